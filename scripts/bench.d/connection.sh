# The shared connection: a warm `fenton exec -- true` against plain ssh on an existing
# master, and how much of a cold handshake it saves; start-up and binary size.

master=$BENCH_WORK/plain-master
ssh -F "$SSH_CONFIG" -o ControlMaster=yes -o ControlPath="$master" -o ControlPersist=60 -fN "$HOST"
cleanups+=("ssh -F '$SSH_CONFIG' -o ControlPath='$master' -O exit '$HOST' 2>/dev/null")
"$FENTON" connect -q

# The remote user's shell start-up files run for every command, whatever the client (bash
# reads ~/.bashrc for ssh commands): the sandbox box is this machine, so time them here.
shell=$(getent passwd "$(id -un)" | cut -d: -f7)
with_rc=$(hf rc "env SHLVL=0 SSH_CLIENT='127.0.0.1 1 22' $shell -c true")
without_rc=$(hf norc "$shell --norc --noprofile -c true")
rc_cost=$(python3 -c "print($with_rc - $without_rc)")
plain=$(hf plain "ssh -F $SSH_CONFIG -S $master $HOST true")
fenton=$(hf fenton "$FENTON exec -- true")
cold=$(hf cold "ssh -F $SSH_CONFIG -o ControlPath=none $HOST true")
version=$(hf version "$FENTON --version")

echo "warm fenton exec -- true:          $(ms "$fenton") ms"
echo "plain ssh -S master host true:     $(ms "$plain") ms"
echo "cold ssh (new handshake):          $(ms "$cold") ms"
echo "ratio fenton / plain master:       $(ratio "$fenton" "$plain")  (goal <= 1.1)"
echo "handshake saved (cold-fenton)/(cold-plain): $(python3 -c "print('%.3f' % (($cold-$fenton)/($cold-$plain)))")  (goal >= 0.95)"
echo "of which the box's login shell start-up files ($shell): $(ms "$rc_cost") ms, for any client"
echo "fenton --version start-up:         $(ms "$version") ms  (goal <= 3)"
echo "release binary:                    $(du -k "$FENTON" | cut -f1) KiB"
