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

# big NAME CMD: median seconds of CMD over 5 runs.
big() {
  local name=$1; shift
  hyperfine -N --warmup 1 --runs 5 --export-json "$BENCH_WORK/$name.json" "$@" >/dev/null
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$BENCH_WORK/$name.json"
}
mibs() { python3 -c 'import sys; print("%.0f" % (256 / float(sys.argv[1])))' "$1"; }

f_read=$(big f_read "dd if=$fmnt/read.bin of=/dev/null bs=1M")
p_read=$(big p_read "dd if=$pmnt/read.bin of=/dev/null bs=1M")
f_write=$(big f_write "dd if=$BENCH_WORK/src.bin of=$fmnt/write-f.bin bs=1M conv=fsync")
p_write=$(big p_write "dd if=$BENCH_WORK/src.bin of=$pmnt/write-p.bin bs=1M conv=fsync")

f_walk_cmd="find $fmnt/tree -printf '%s %T@ %m\n'"
p_walk_cmd="find $pmnt/tree -printf '%s %T@ %m\n'"
[ "$(sh -c "$f_walk_cmd" | wc -l)" = 2021 ] || echo "fs: the walk did not see 2,000 files"
walk_hf() {
  local name=$1 prepare=$2 cmd=$3
  hyperfine --warmup 1 --runs 10 --prepare "$prepare" --export-json "$BENCH_WORK/$name.json" "$cmd" >/dev/null
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$BENCH_WORK/$name.json"
}
f_walk=$(walk_hf f_walk "$fenton_unmount; $fenton_mount" "$f_walk_cmd > /dev/null")
p_walk=$(walk_hf p_walk "$plain_unmount; $plain_mount" "$p_walk_cmd > /dev/null")
mount_time=$(big mount_time --prepare "$fenton_unmount" "$fenton_mount")

echo "read 256 MiB:   fenton $(mibs "$f_read") MiB/s, plain sshfs $(mibs "$p_read") MiB/s, speed-up $(ratio "$p_read" "$f_read")  (goal >= 1.3)"
echo "write 256 MiB:  fenton $(mibs "$f_write") MiB/s, plain sshfs $(mibs "$p_write") MiB/s, speed-up $(ratio "$p_write" "$f_write")  (goal >= 1.3)"
echo "walk 2,000 files (cold mount): fenton $(ms "$f_walk") ms, plain sshfs $(ms "$p_walk") ms, ratio fenton/plain $(ratio "$f_walk" "$p_walk")  (goal <= 1.0)"
echo "fenton fs mount (new connection + FUSE mount): $(ms "$mount_time") ms"
echo "cipher: $(grep -qw aes /proc/cpuinfo 2>/dev/null && echo 'aes128-gcm (CPU has AES)' || echo 'ssh default')"
$fenton_unmount
$plain_unmount
