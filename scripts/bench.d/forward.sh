# Forwards: a request through fenton's forward against the same request through a plain
# `ssh -L` on a master of its own, interleaved in one run (each request a new connection, as
# a browser's often is), a 20 MB download through each, and the first request after the
# shared connection was killed against one handshake.

fw=$BENCH_WORK/forward
mkdir -p "$fw/www"
head -c 20000000 /dev/urandom > "$fw/www/big.bin"
printf 'hello from the box\n' > "$fw/www/hello.txt"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wport=$(free_port)
# Python's file server, its answers buffered: unbuffered, headers and body leave in two
# writes, and Nagle's algorithm with the delayed ACK makes every request 40 ms, both ways.
python3 -c '
import functools, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    wbufsize = 1 << 16
    def log_message(self, *args):
        pass
H = functools.partial(H, directory=sys.argv[1])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
' "$fw/www" "$wport" >/dev/null 2>&1 &
web=$!
cleanups+=("kill $web")
until curl -sf -o /dev/null "http://127.0.0.1:$wport/hello.txt"; do sleep 0.05; done

fport=$(free_port)
pport=$(free_port)
"$FENTON" -q tunnel "$fport:127.0.0.1:$wport" >/dev/null
cleanups+=("'$FENTON' -q disconnect --all")
plain=$fw/plain-master
ssh -F "$SSH_CONFIG" -o ControlMaster=yes -o ControlPath="$plain" -o ControlPersist=60 \
  -L "127.0.0.1:$pport:127.0.0.1:$wport" -fN "$HOST"
cleanups+=("ssh -F '$SSH_CONFIG' -o ControlPath='$plain' -O exit '$HOST' 2>/dev/null")

# Interleaved: fenton, plain, fenton, plain… so a busy moment costs both alike.
python3 - "$fport" "$pport" <<'PY'
import http.client, statistics, sys, time
ports = {"fenton": int(sys.argv[1]), "plain ssh -L": int(sys.argv[2])}
def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t = time.perf_counter()
    c.request("GET", path)
    body = c.getresponse().read()
    took = time.perf_counter() - t
    c.close()
    return took, len(body)
small = {k: [] for k in ports}
for _ in range(20):
    for k, p in ports.items():
        get(p, "/hello.txt")
# Three rounds: a busy moment shows as one round apart from the others.
ratios = []
for _ in range(3):
    round_ = {k: [] for k in ports}
    for _ in range(200):
        for k, p in ports.items():
            round_[k].append(get(p, "/hello.txt")[0])
    for k in ports:
        small[k] += round_[k]
    a, b = (statistics.median(round_[k]) for k in ports)
    ratios.append(a / b)
big = {k: [] for k in ports}
for _ in range(5):
    for k, p in ports.items():
        took, n = get(p, "/big.bin")
        big[k].append(n / took / 1e6)
f, s = (statistics.median(small[k]) for k in ports)
print("request through fenton's forward:  %.2f ms  (median of 600, a new connection each)" % (f * 1000))
print("request through plain ssh -L:      %.2f ms" % (s * 1000))
print("ratio fenton / ssh -L:             %.2f  (goal <= 1.2; rounds: %s)" % (f / s, ", ".join("%.2f" % r for r in ratios)))
fb, sb = (statistics.median(big[k]) for k in ports)
print("20 MB download: fenton %.0f MB/s, ssh -L %.0f MB/s, ratio %.2f" % (fb, sb, fb / sb))
PY

# One handshake: a master opened from nothing until it is authenticated.
now() { date +%s.%N; }
median() { python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
hs=()
for i in 1 2 3 4 5; do
  t0=$(now)
  ssh -F "$SSH_CONFIG" -o ControlMaster=yes -o ControlPath="$fw/hs-$i" -fN "$HOST"
  t1=$(now)
  hs+=("$(python3 -c "print($t1 - $t0)")")
  ssh -F "$SSH_CONFIG" -o ControlPath="$fw/hs-$i" -O exit "$HOST" 2>/dev/null
done

# The first request after the shared connection was killed (kill -9, as a lost link leaves
# it), with no fenton command between.
first=()
for i in 1 2 3 4 5; do
  masters=$(ps -eo pid=,comm=,args= | awk -v p="ControlPath=$XDG_RUNTIME_DIR/fenton/" '$2 == "ssh" && index($0, p) && / -M / { print $1 }')
  for pid in $masters; do kill -KILL "$pid"; done
  # Dead, as a master the link took is, before the request.
  for pid in $masters; do while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done; done
  t=$(curl -s -o /dev/null -w '%{time_total}' --max-time 30 "http://127.0.0.1:$fport/hello.txt")
  first+=("$t")
done
hs_s=$(median "${hs[@]}")
first_s=$(median "${first[@]}")
echo "one handshake (ssh -M until authenticated): $(ms "$hs_s") ms  (median of 5)"
echo "first request after a killed master:        $(ms "$first_s") ms  (median of 5)"
echo "beyond one handshake:                       $(ms "$(python3 -c "print($first_s - $hs_s)")") ms  (goal <= 500)"
