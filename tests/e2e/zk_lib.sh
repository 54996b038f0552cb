# zk_lib.sh - a real ZooKeeper server (Debian's package) for the HA tests, started as a plain
# process on a free 127.0.0.1 port with its own data dir, in the test's process groups (so the
# cluster_lib.sh trap kills it). Source after cluster_lib.sh.
#   zk_start NAME      starts server NAME; sets ZK_PORT (waits until it answers "imok")
#   zk_ok PORT         the server on PORT answers ruok
#   zk_start_coordinator [PORT]   one more coordinator on $ZK (see below)

ZK_CP=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar

zk_free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

zk_ok() {
    "$PYTHON" - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"ruok")
sys.exit(0 if s.recv(8) == b"imok" else 1)
PY
}

zk_start() {
    local name=$1 dir=$CL/zk-$1
    [ -r /usr/share/java/zookeeper.jar ] || fail "ZooKeeper is not installed (scripts/install-deps.sh installs it)"
    mkdir -p "$dir/data"
    ZK_PORT=$(zk_free_port)
    cat >"$dir/zoo.cfg" <<CFG
tickTime=500
dataDir=$dir/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
minSessionTimeout=1000
maxSessionTimeout=30000
admin.enableServer=false
4lw.commands.whitelist=ruok
CFG
    cl_spawn "$dir/log" "$dir/out" java -Xmx256m -cp "$dir:$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg"
    poll_until 60 "ZooKeeper $name on port $ZK_PORT to answer" zk_ok "$ZK_PORT"
    echo "ZooKeeper $name on 127.0.0.1:$ZK_PORT"
}

# zk_start_ensemble N: N servers in one quorum; sets ZK_HOSTS (h:p,h:p,...) and ZK_PIDS[1..N].
declare -a ZK_PIDS=()
zk_start_ensemble() {
    local n=$1 i
    local -a cport qport eport
    for i in $(seq 1 "$n"); do
        cport[$i]=$(zk_free_port)
        qport[$i]=$(zk_free_port)
        eport[$i]=$(zk_free_port)
    done
    ZK_HOSTS=""
    for i in $(seq 1 "$n"); do
        local dir=$CL/zk-e$i
        mkdir -p "$dir/data"
        echo "$i" >"$dir/data/myid"
        {
            echo "tickTime=500"
            echo "initLimit=20"
            echo "syncLimit=10"
            echo "dataDir=$dir/data"
            echo "clientPort=${cport[$i]}"
            echo "clientPortAddress=127.0.0.1"
            echo "minSessionTimeout=1000"
            echo "maxSessionTimeout=30000"
            echo "admin.enableServer=false"
            echo "4lw.commands.whitelist=ruok"
            local k
            for k in $(seq 1 "$n"); do echo "server.$k=127.0.0.1:${qport[$k]}:${eport[$k]}"; done
        } >"$dir/zoo.cfg"
        cl_spawn "$dir/log" "$dir/out" java -Xmx192m -cp "$dir:$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg"
        ZK_PIDS[$i]=$CL_PID
        ZK_HOSTS+="${ZK_HOSTS:+,}127.0.0.1:${cport[$i]}"
    done
    # Serving (not just listening): a quorum member answers imok only once it has a leader.
    for i in $(seq 1 "$n"); do poll_until 90 "ZooKeeper server $i of the ensemble" zk_ok "${cport[$i]}"; done
    echo "ZooKeeper ensemble $ZK_HOSTS"
}

# zk_start_coordinator [PORT]: one more coordinator (log $CL/coordN.log) electing through $ZK,
# on PORT (default: a free one; a replacement takes the port of the one it replaces, as a
# restarted pod keeps its address). Records CPID[address], COORD_LOG[address], and adds a new
# address to ADDRS. ZK_COORD_ENV (VAR=VALUE...) and ZK_COORD_ARGS extend its environment and
# command line; SESSION_MS is its --zk-session-ms.
declare -A CPID=() COORD_LOG=()
ADDRS=()
ZK_COORD_ENV=()
ZK_COORD_ARGS=()
ZK_NC=0
zk_start_coordinator() {
    ZK_NC=$((ZK_NC + 1))
    local i=$ZK_NC port=${1:-0}
    : >"$CL/coord$i.out"
    cl_spawn "$CL/coord$i.log" "$CL/coord$i.out" env "${ZK_COORD_ENV[@]}" "$TALLY" coordinator \
        --listen "127.0.0.1:$port" --token-file "$CL_TOKEN_FILE" --zookeeper "$ZK" --zk-session-ms "${SESSION_MS:-2000}" \
        --heartbeat-ms 100 "${ZK_COORD_ARGS[@]}"
    local pid=$CL_PID
    zk_printed() { grep -q '^coordinator listening on ' "$CL/coord$i.out"; }
    poll_until 20 "coordinator $i to print its address" zk_printed
    local addr
    addr=$(sed -n 's/^coordinator listening on //p' "$CL/coord$i.out")
    CPID[$addr]=$pid
    COORD_LOG[$addr]=$CL/coord$i.log
    [ "$port" != 0 ] || ADDRS+=("$addr")
}

# zk_leader: the address of the coordinator that leads now (asked through $CL_COORD).
zk_leader() { cl_q '[m["address"] for m in d["coordinators"] if m["role"] == "leader" and m.get("state")][0]'; }
