# zk_lib.sh - a real ZooKeeper server (Debian's package) for the HA tests, started as a plain
# process on a free 127.0.0.1 port with its own data dir, in the test's process groups (so the
# cluster_lib.sh trap kills it). Source after cluster_lib.sh.
#   zk_start NAME      starts server NAME; sets ZK_PORT (waits until it answers "imok")
#   zk_ok PORT         the server on PORT answers ruok

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
