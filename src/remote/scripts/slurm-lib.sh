# What the Slurm job scripts share (after lib.sh). A Slurm job's directory holds `slurm`
# (its Slurm job id), `array` (its --array spec, for an array), `job.sh` (the batch script
# fenton wrote), `log` (or `log.N` per array task), and `final` once fenton has seen it end
# (the scheduler's last word on it, so it is never asked about again).

# fj_sfind JOB: as fj_find, and JOB may be the Slurm job id too; fj_sid becomes that id.
# `ID.N` names task N of an array job (fj_task).
fj_sfind() {
  fj_task=
  fj_want=$1
  case $1 in
    *.[0-9]*)
      if [ ! -d "$fj_jobs/$1" ]; then fj_task=${1##*.} fj_want=${1%.*}; fi
      case $fj_task in *[!0-9]*) fj_task='' fj_want=$1 ;; esac
      ;;
  esac
  fj_job=
  case $fj_want in
    *[!0-9]* | '') ;;
    *)
      for fj_d in "$fj_jobs"/*/; do
        fj_read "${fj_d}slurm"
        if [ "$fj_v" = "$fj_want" ]; then fj_job=${fj_d%/}; fi
      done
      ;;
  esac
  [ -n "$fj_job" ] || fj_find "$fj_want"
  fj_read "$fj_job/slurm"
  fj_sid=$fj_v
  case $fj_sid in
    '' | *[!0-9]*) fj_damaged "it holds no Slurm job id: it is not a job of this cluster" ;;
  esac
}

# fj_active STATE...: whether any of these Slurm states is one a job leaves by itself.
fj_active() {
  for fj_s in "$@"; do
    case $fj_s in
      PENDING | RUNNING | COMPLETING | CONFIGURING | SUSPENDED | REQUEUED | REQUEUE_* | RESIZING | SIGNALING | STAGE_OUT | STOPPED | UNREACHABLE) return 0 ;;
    esac
  done
  return 1
}

# fj_states ID: the states of the job's tasks now (squeue, one query), on one line; nothing
# once the queue has forgotten the job, and UNREACHABLE when the controller did not answer
# (the job may well be running: nobody can say it ended).
fj_states() {
  if fj_o=$(squeue -h -j "$1" -o %T 2>&1); then
    printf '%s\n' "$fj_o" | tr '\n' ' '
    return 0
  fi
  case $fj_o in
    *'Invalid job id'*) ;;
    *) echo UNREACHABLE ;;
  esac
}

# fj_pattern PATH: PATH as sbatch's --output takes it (fj_v): the node reads `%j`, `%u` and
# the like in it as the job's id, the user..., so each `%` is written `%%`. A backslash makes
# Slurm replace nothing in the whole pattern (not even `%a`, a task's log): refused.
fj_pattern() {
  case $1 in
    *\\*)
      printf 'fenton: %s holds a backslash, which Slurm reads in a log path: set remote_dir to a path without one\n' "$(fj_shown "$1")" >&2
      exit 1
      ;;
  esac
  fj_v='' fj_r=$1
  while :; do
    case $fj_r in
      *%*) fj_v=$fj_v${fj_r%%\%*}%% fj_r=${fj_r#*\%} ;;
      *) break ;;
    esac
  done
  fj_v=$fj_v$fj_r
}
