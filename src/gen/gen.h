/* gen.h - `tally gen`: deterministic synthetic data sets for tests, the demo and the benchmarks.
 *
 * Three data sets, each a pure function of its arguments (same arguments, same bytes, on any
 * run of the same build):
 *
 *   text        Zipf-distributed words from a synthetic vocabulary, or mostly distinct random
 *               words with --unique; exactly --size bytes.
 *   readings    smart-plug readings shaped like the DEBS 2014 Grand Challenge CSV.
 *   inferences  image-classifier results as JSON Lines, the way mongoexport writes them.
 *
 * `tally gen --help` and `tally gen SET --help` describe the options.
 */
#ifndef TALLY_GEN_H
#define TALLY_GEN_H

/* Runs `tally gen SET [options]`; argv[0] is "gen". Messages go to stderr, help to stdout.
 * Returns the process exit code: 0 done, 1 failure (e.g. an unwritable output, the message
 * names the path), 2 usage error. Files already written before a failure are left in place. */
int gen_main(int argc, char **argv);

#endif
