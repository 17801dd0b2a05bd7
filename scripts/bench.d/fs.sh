# The mount: `fenton fs mount` against a plain `sshfs host:path mnt` with sshfs's defaults,
# on the same box in the same run. Sequential read and write of a 256 MiB file (dd, 1 MiB
# blocks, the write ended by fsync), and a walk (find + stat) over 2,000 small files.
#
# Caches, said honestly: the box is this machine, so the file read is in the box's page cache
# for both mounts (the link and sshfs are what is measured, not a disk). On the laptop side
# sshfs opens files without keep_cache, so every open drops what the kernel cached of the file
# and each read goes over the link; sshfs's own attribute and directory caches would answer a
# second walk from memory, so each walk runs on a fresh mount (hyperfine --prepare remounts).

command -v sshfs >/dev/null || { echo "fs: sshfs is missing (apt install sshfs)"; return 0; }
data=$BENCH_WORK/fs-data
fmnt=$BENCH_WORK/fenton-mnt
pmnt=$BENCH_WORK/plain-mnt
mkdir -p "$data/tree" "$pmnt"
head -c 256M /dev/urandom > "$BENCH_WORK/src.bin"
cp "$BENCH_WORK/src.bin" "$data/read.bin"
for d in $(seq 20); do
  mkdir -p "$data/tree/d$d"
  for f in $(seq 100); do printf '%s\n' "$d $f" > "$data/tree/d$d/f$f"; done
done
cat >> "$FENTON_CONFIG" <<TOML
[profile.bench.mount]
local_path = "$fmnt"
remote_path = "$data"
TOML

fenton_mount="$FENTON -q fs mount"
fenton_unmount="$FENTON -q fs unmount"
plain_mount="sshfs -F $SSH_CONFIG $HOST:$data $pmnt"
plain_unmount="fusermount3 -u $pmnt"
cleanups+=("$FENTON fs unmount --force >/dev/null 2>&1; fusermount3 -uz '$pmnt' 2>/dev/null")
$fenton_mount
$plain_mount

# alt ROUNDS A B [PREPARE_A PREPARE_B]: runs A and B in turn (ABBAAB…, after one warm-up
# round), so both meet the same load on this shared machine; prints the median seconds of each.
alt() {
  python3 - "$@" <<'PY'
import statistics, subprocess, sys, time
rounds, a, b = int(sys.argv[1]), sys.argv[2], sys.argv[3]
prep_a, prep_b = (sys.argv[4:6] + ["", ""])[:2]
times = {a: [], b: []}
for i in range(rounds + 1):
    order = [(a, prep_a), (b, prep_b)] if i % 2 == 0 else [(b, prep_b), (a, prep_a)]
    for cmd, prep in order:
        if prep:
            subprocess.run(prep, shell=True, check=True, stdout=subprocess.DEVNULL)
        start = time.perf_counter()
        subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i:
            times[cmd].append(time.perf_counter() - start)
print(statistics.median(times[a]), statistics.median(times[b]))
PY
}
mibs() { python3 -c 'import sys; print("%.0f" % (256 / float(sys.argv[1])))' "$1"; }

read -r f_read p_read < <(alt 10 "dd if=$fmnt/read.bin of=/dev/null bs=1M" "dd if=$pmnt/read.bin of=/dev/null bs=1M")
read -r f_write p_write < <(alt 10 "dd if=$BENCH_WORK/src.bin of=$fmnt/write.bin bs=1M conv=fsync" \
  "dd if=$BENCH_WORK/src.bin of=$pmnt/write.bin bs=1M conv=fsync")
f_walk_cmd="find $fmnt/tree -printf '%s %T@ %m\\n'"
p_walk_cmd="find $pmnt/tree -printf '%s %T@ %m\\n'"
[ "$(sh -c "$f_walk_cmd" | wc -l)" = 2021 ] || echo "fs: the walk did not see 2,000 files"
read -r f_walk p_walk < <(alt 20 "$f_walk_cmd" "$p_walk_cmd" "$fenton_unmount; $fenton_mount" "$plain_unmount; $plain_mount")
read -r mount_time plain_mount_time < <(alt 10 "$fenton_mount" "$plain_mount" "$fenton_unmount" "$plain_unmount")

echo "read 256 MiB:   fenton $(mibs "$f_read") MiB/s, plain sshfs $(mibs "$p_read") MiB/s, speed-up $(ratio "$p_read" "$f_read")  (goal >= 1.3)"
echo "write 256 MiB:  fenton $(mibs "$f_write") MiB/s, plain sshfs $(mibs "$p_write") MiB/s, speed-up $(ratio "$p_write" "$f_write")  (goal >= 1.3)"
echo "walk 2,000 files (cold mount): fenton $(ms "$f_walk") ms, plain sshfs $(ms "$p_walk") ms, ratio fenton/plain $(ratio "$f_walk" "$p_walk")  (goal <= 1.0)"
echo "mount (new connection + FUSE mount): fenton fs mount $(ms "$mount_time") ms, plain sshfs $(ms "$plain_mount_time") ms"
echo "cipher: $(grep -qw aes /proc/cpuinfo 2>/dev/null && echo 'aes128-gcm (CPU has AES)' || echo 'ssh default')"
$fenton_unmount
$plain_unmount
