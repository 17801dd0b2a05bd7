# The shared connection: a warm `fenton exec -- true` against plain ssh on an existing
# master, and how much of a cold handshake it saves; start-up and binary size.

master=$BENCH_WORK/plain-master
ssh -F "$SSH_CONFIG" -o ControlMaster=yes -o ControlPath="$master" -o ControlPersist=60 -fN "$HOST"
cleanups+=("ssh -F '$SSH_CONFIG' -o ControlPath='$master' -O exit '$HOST' 2>/dev/null")
"$FENTON" connect -q

plain=$(hf plain "ssh -F $SSH_CONFIG -S $master $HOST true")
fenton=$(hf fenton "$FENTON exec -- true")
cold=$(hf cold "ssh -F $SSH_CONFIG -o ControlPath=none $HOST true")
version=$(hf version "$FENTON --version")

# Every command also runs the box user's shell start-up files (root's .bashrc here), which
# no client can avoid. A second box whose sessions get an empty HOME reads none: the same
# pair of clients there shows what the clients alone cost.
mkdir -p "$BENCH_WORK/bare-home"
"$root/scripts/sandbox" start --dir "$BENCH_WORK/bare" --no-profile --env "HOME=$BENCH_WORK/bare-home" >/dev/null
cleanups+=("'$root/scripts/sandbox' stop --dir '$BENCH_WORK/bare' >/dev/null")
bare_config=$BENCH_WORK/bare-config.toml
printf '[profile.bare]\nhost = "%s"\nssh_config = "%s"\nremote_dir = "%s"\n' \
  "$HOST" "$BENCH_WORK/bare/ssh_config" "$BENCH_WORK/bare-remote" > "$bare_config"
chmod 600 "$bare_config"
bare_master=$BENCH_WORK/bare-master
ssh -F "$BENCH_WORK/bare/ssh_config" -o ControlMaster=yes -o ControlPath="$bare_master" -o ControlPersist=60 -fN "$HOST"
cleanups+=("ssh -F '$BENCH_WORK/bare/ssh_config' -o ControlPath='$bare_master' -O exit '$HOST' 2>/dev/null")
FENTON_CONFIG=$bare_config "$FENTON" connect -q
bare_plain=$(hf bare-plain "ssh -F $BENCH_WORK/bare/ssh_config -S $bare_master $HOST true")
bare_fenton=$(FENTON_CONFIG=$bare_config hf bare-fenton "$FENTON exec -- true")

echo "warm fenton exec -- true:          $(ms "$fenton") ms"
echo "plain ssh -S master host true:     $(ms "$plain") ms"
echo "cold ssh (new handshake):          $(ms "$cold") ms"
echo "ratio fenton / plain master:       $(ratio "$fenton" "$plain")  (goal <= 1.1)"
echo "handshake saved (cold-fenton)/(cold-plain): $(python3 -c "print('%.3f' % (($cold-$fenton)/($cold-$plain)))")  (goal >= 0.95)"
echo "box user without start-up files:   fenton $(ms "$bare_fenton") ms, plain $(ms "$bare_plain") ms, ratio $(ratio "$bare_fenton" "$bare_plain")"
echo "the box's shell start-up files:    $(python3 -c "print('%.2f' % (($plain - $bare_plain) * 1000))") ms of every command, for any client"
echo "fenton --version start-up:         $(ms "$version") ms  (goal <= 3)"
echo "release binary:                    $(du -k "$FENTON" | cut -f1) KiB"
