# fenton status: one round trip, measured against the warm `fenton exec -- true` it builds
# on (goal <= 3x), first with the CPU sample kept from the run before (what a person running
# status again, or a script polling it, gets), then with none (a 0.25 s sample taken on the
# spot). And --all over 8 profiles against --all over one (goal <= 1.5x), every box behind
# a latency relay: the boxes are asked at once. The box here has no GPU (nvidia-smi's own
# time is not fenton's).

"$FENTON" connect -q
exec_true=$(hf status-exec "$FENTON exec -- true")
status_json=$(hf status-json "$FENTON status --json")
# The box writes the kept sample just after answering: let the previous run's land first.
status_cold=$(hf status-cold --prepare "sh -c 'sleep 0.2; rm -f $BENCH_WORK/remote/status.sample'" "$FENTON status --json")

# --all: N profiles, each with its own connection, opened beforehand, each behind a relay of
# its own that adds 25 ms each way: boxes far away, as a user has them. Without the delay the
# 8 "boxes", all this machine, would only compete for its cores.
relay_ports_file=$BENCH_WORK/relay.ports
python3 "$root/scripts/bench.d/relay.py" 25 "$(cat "$BENCH_WORK/box/port")" 9 >"$relay_ports_file" &
cleanups+=("kill $!")
for _ in $(seq 100); do [ -s "$relay_ports_file" ] && break; sleep 0.1; done
read -r -a relay_ports <"$relay_ports_file" || { echo "bench: the relay did not start" >&2; exit 1; }
profiles() { # profiles FILE RELAY_INDEX...
  local file=$1 i
  shift
  : >"$file"
  for i in "$@"; do
    sed "s/^  Port .*/  Port ${relay_ports[$i]}/" "$SSH_CONFIG" >"$BENCH_WORK/relay-$i.ssh_config"
    printf '[profile.p%s]\nhost = "%s"\nssh_config = "%s"\nremote_dir = "%s/remote"\n\n' \
      "$i" "$HOST" "$BENCH_WORK/relay-$i.ssh_config" "$BENCH_WORK" >>"$file"
  done
  chmod 600 "$file"
  for i in "$@"; do
    FENTON_CONFIG=$file "$FENTON" -p "p$i" connect -q
    cleanups+=("FENTON_CONFIG='$file' '$FENTON' -p p$i disconnect -q")
  done
}
one=$BENCH_WORK/one.toml eight=$BENCH_WORK/eight.toml
profiles "$one" 0
profiles "$eight" 1 2 3 4 5 6 7 8
relay_exec=$(FENTON_CONFIG=$one hf status-relay-exec "$FENTON -p p0 exec -- true")
all_one=$(hf status-all1 "env FENTON_CONFIG=$one $FENTON status --all --json")
all_eight=$(hf status-all8 "env FENTON_CONFIG=$eight $FENTON status --all --json")

echo "warm fenton exec -- true:               $(ms "$exec_true") ms"
echo "fenton status --json (sample kept):     $(ms "$status_json") ms"
echo "fenton status --json (0.25 s sample):   $(ms "$status_cold") ms"
echo "ratio status / exec true:               $(ratio "$status_json" "$exec_true")  (goal <= 3)"
echo "ratio status, fresh sample / exec true: $(ratio "$status_cold" "$exec_true")"
echo "behind a 25 ms relay (each way), warm exec -- true: $(ms "$relay_exec") ms"
echo "fenton status --all, 1 profile:         $(ms "$all_one") ms"
echo "fenton status --all, 8 profiles:        $(ms "$all_eight") ms"
echo "ratio --all 8 / 1:                      $(ratio "$all_eight" "$all_one")  (goal <= 1.5)"
# All 8 "boxes" are still this machine: their sshd sessions and scripts share its cores, which
# 8 real boxes would not. fenton's own CPU time shows what fenton adds.
cpu() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(r["user"]+r["system"])' "$BENCH_WORK/$1.json"; }
echo "fenton's own CPU, --all 1 / 8 profiles:  $(ms "$(cpu status-all1)") / $(ms "$(cpu status-all8)") ms"
