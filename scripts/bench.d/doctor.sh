# fenton doctor: every check (one fresh BatchMode login to test key authentication, then the
# box's script over the shared connection) against what it cannot avoid: one plain cold ssh
# login, and plain ssh running the same script over an existing master.

master=$BENCH_WORK/doctor-master
ssh -F "$SSH_CONFIG" -o ControlMaster=yes -o ControlPath="$master" -o ControlPersist=60 -fN "$HOST"
cleanups+=("ssh -F '$SSH_CONFIG' -o ControlPath='$master' -O exit '$HOST' 2>/dev/null")
"$FENTON" connect -q

# Doctor takes about a second: fewer runs than hf's.
few() {
  local name=$1; shift
  hyperfine -N -i --warmup 2 --runs 10 --export-json "$BENCH_WORK/$name.json" "$@" >/dev/null 2>&1 ||
    hyperfine -i --warmup 2 --runs 10 --export-json "$BENCH_WORK/$name.json" "$@" >/dev/null
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$BENCH_WORK/$name.json"
}
script=$PWD/src/remote/scripts/doctor.sh
doctor=$(few doctor "$FENTON doctor --json")
cold=$(few doctor-cold "ssh -F $SSH_CONFIG -o ControlPath=none -o BatchMode=yes $HOST true")
box=$(few doctor-script "sh -c 'ssh -F $SSH_CONFIG -S $master $HOST sh -s -- /tmp/x jupyter \"\" < $script'")

echo "fenton doctor (all checks, warm connection): $(ms "$doctor") ms"
echo "plain cold ssh login (BatchMode):            $(ms "$cold") ms"
echo "plain ssh -S master running doctor.sh:       $(ms "$box") ms"
echo "ratio doctor / (cold login + script):        $(ratio "$doctor" "$(python3 -c "print($cold + $box)")")  (goal <= 1.0: the two run at once)"
