# fenton code's look at the box: POSIX sh read on stdin by `sh -s` after `set -- DIR`. It
# changes nothing. It prints `key=value` lines: the system, the C library's version as the
# box's own tools tell it, and last the directory (absolute) or what is wrong with it.

dir=$1

# One line, no control characters: what the box says is data.
first_line() { sed -n '1{s/[[:cntrl:]]//g;p;}'; }

echo "os=$(uname -s 2>/dev/null | first_line)"
echo "getconf=$(getconf GNU_LIBC_VERSION 2>/dev/null | first_line)"
echo "ldd=$(ldd --version 2>&1 | first_line)"

# A relative name is the home's; an absolute one keeps cd from reading it as `-` or a
# CDPATH entry.
case $dir in
  /*) ;;
  *) dir=${HOME:-/}/$dir ;;
esac
if [ ! -e "$dir" ]; then
  echo "dir_problem=missing"
elif [ ! -d "$dir" ]; then
  echo "dir_problem=not_a_directory"
elif ! cd -- "$dir" 2>/dev/null; then
  echo "dir_problem=denied"
else
  # Last: the name runs to the end of the output, newlines and all.
  printf 'dir=%s\n' "$(pwd)"
fi
