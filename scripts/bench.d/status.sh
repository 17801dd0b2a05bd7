# fenton status: one round trip, measured against the warm `fenton exec -- true` it builds
# on (goal <= 3x), first with the CPU sample kept from the run before (what a person running
# status again, or a script polling it, gets), then with none (a 0.25 s sample taken on the
# spot). And --all over 8 profiles against --all over one (goal <= 1.5x): the boxes are
# asked at once. The box here has no GPU (nvidia-smi's own time is not fenton's).

"$FENTON" connect -q
exec_true=$(hf status-exec "$FENTON exec -- true")
status_json=$(hf status-json "$FENTON status --json")
# The box writes the kept sample just after answering: let the previous run's land first.
status_cold=$(hf status-cold --prepare "sh -c 'sleep 0.2; rm -f $BENCH_WORK/remote/status.sample'" "$FENTON status --json")

# --all: N profiles, each with its own connection, opened beforehand. Run once against this
# box and once against a box whose sessions get an empty HOME, so root's .bashrc (~80 ms of
# CPU per session, paid 8 times on these 2 cores) is not what the ratio measures.
mkdir -p "$BENCH_WORK/status-bare-home"
"$root/scripts/sandbox" start --dir "$BENCH_WORK/status-bare" --no-profile --env "HOME=$BENCH_WORK/status-bare-home" >/dev/null
cleanups+=("'$root/scripts/sandbox' stop --dir '$BENCH_WORK/status-bare' >/dev/null")
profiles() { # profiles N SSH_CONFIG FILE
  : >"$3"
  for i in $(seq "$1"); do
    printf '[profile.p%s]\nhost = "%s"\nssh_config = "%s"\nremote_dir = "%s/remote"\n\n' \
      "$i" "$HOST" "$2" "$BENCH_WORK" >>"$3"
  done
  chmod 600 "$3"
  for i in $(seq "$1"); do
    FENTON_CONFIG=$3 "$FENTON" -p "p$i" connect -q
    cleanups+=("FENTON_CONFIG='$3' '$FENTON' -p p$i disconnect -q")
  done
}
one=$BENCH_WORK/one.toml eight=$BENCH_WORK/eight.toml
profiles 1 "$SSH_CONFIG" "$one"
profiles 8 "$SSH_CONFIG" "$eight"
bare_one=$BENCH_WORK/bare-one.toml bare_eight=$BENCH_WORK/bare-eight.toml
profiles 1 "$BENCH_WORK/status-bare/ssh_config" "$bare_one"
profiles 8 "$BENCH_WORK/status-bare/ssh_config" "$bare_eight"
all_one=$(hf status-all1 "env FENTON_CONFIG=$one $FENTON status --all --json")
all_eight=$(hf status-all8 "env FENTON_CONFIG=$eight $FENTON status --all --json")
bare_all_one=$(hf status-bare-all1 "env FENTON_CONFIG=$bare_one $FENTON status --all --json")
bare_all_eight=$(hf status-bare-all8 "env FENTON_CONFIG=$bare_eight $FENTON status --all --json")

echo "warm fenton exec -- true:               $(ms "$exec_true") ms"
echo "fenton status --json (sample kept):     $(ms "$status_json") ms"
echo "fenton status --json (0.25 s sample):   $(ms "$status_cold") ms"
echo "ratio status / exec true:               $(ratio "$status_json" "$exec_true")  (goal <= 3)"
echo "ratio status, fresh sample / exec true: $(ratio "$status_cold" "$exec_true")"
echo "fenton status --all, 1 profile:         $(ms "$all_one") ms"
echo "fenton status --all, 8 profiles:        $(ms "$all_eight") ms"
echo "ratio --all 8 / 1:                      $(ratio "$all_eight" "$all_one")  (goal <= 1.5)"
echo "same, box user without start-up files:  $(ms "$bare_all_one") / $(ms "$bare_all_eight") ms, ratio $(ratio "$bare_all_eight" "$bare_all_one")"
# Here all 8 "boxes" are this machine: their sshd sessions, login shells and scripts share its
# cores, which 8 real boxes would not. fenton's own CPU time shows what fenton adds.
cpu() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(r["user"]+r["system"])' "$BENCH_WORK/$1.json"; }
echo "fenton's own CPU, --all 1 / 8 profiles:  $(ms "$(cpu status-all1)") / $(ms "$(cpu status-all8)") ms"
