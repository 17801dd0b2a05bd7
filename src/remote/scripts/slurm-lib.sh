# What the Slurm job scripts share (after lib.sh). A Slurm job's directory holds `slurm`
# (its Slurm job id), `array` (its --array spec, for an array), `job.sh` (the batch script
# fenton wrote), `log` (or `log.N` per array task), and `final` once fenton has seen it end
# (the scheduler's last word on it, so it is never asked about again).
#
# Every script that talks to Slurm starts with what comes before `# fj_sfind` (status,
# doctor and Jupyter too, which take nothing else from here).
#
# The login shell's environment is the user's, for their own use of Slurm's commands, and
# Slurm reads much of it as options: SQUEUE_STATES or SQUEUE_USERS would hide jobs from
# fenton, SQUEUE_FORMAT2 would win over its -o, SCANCEL_STATE would make a cancel skip a
# running job, SCANCEL_INTERACTIVE read its answer from this script, SBATCH_ERROR send the
# job's stderr where fenton does not read, SBATCH_WAIT hold the submission until the job
# ends, SLURM_EXIT_ERROR=0 make a refusal look like success, SLURM_TIME_FORMAT change how
# times are printed. So what changes what the commands print, filter, or where and how a
# job's output goes, is unset here; times are seconds since the epoch. What says where and
# with what a job runs (SLURM_CONF, SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_QOS,
# SBATCH_TIMELIMIT, SBATCH_EXPORT...) stays the user's: options fenton gives win over it.
# (A job's environment is this one, less these, with the user's own time format.)
unset SQUEUE_ACCOUNT SQUEUE_ALL SQUEUE_ARRAY SQUEUE_ARRAY_UNIQUE SQUEUE_FEDERATION \
  SQUEUE_FORMAT SQUEUE_FORMAT2 SQUEUE_LICENSES SQUEUE_LOCAL SQUEUE_NAMES SQUEUE_PARTITION \
  SQUEUE_PRIORITY SQUEUE_QOS SQUEUE_SIB SQUEUE_SIBLING SQUEUE_SORT SQUEUE_STATES SQUEUE_USERS \
  SACCT_FEDERATION SACCT_FORMAT SACCT_LOCAL \
  SINFO_ALL SINFO_FEDERATION SINFO_FORMAT SINFO_LOCAL SINFO_PARTITION SINFO_SORT \
  SCANCEL_ACCOUNT SCANCEL_BATCH SCANCEL_CTLD SCANCEL_FULL SCANCEL_HURRY SCANCEL_INTERACTIVE \
  SCANCEL_NAME SCANCEL_PARTITION SCANCEL_QOS SCANCEL_STATE SCANCEL_USER SCANCEL_VERBOSE \
  SCANCEL_WCKEY \
  SCONTROL_ALL SCONTROL_FEDERATION SCONTROL_FUTURE SCONTROL_LOCAL SCONTROL_SIB SCONTROL_SIBLING \
  SBATCH_ARRAY_INX SBATCH_CONTAINER SLURM_CONTAINER SBATCH_DEBUG SBATCH_ERROR SBATCH_INPUT \
  SBATCH_JOB_NAME SBATCH_OPEN_MODE SBATCH_OUTPUT SBATCH_WAIT SLURM_EXIT_ERROR \
  SBATCH_CLUSTERS SLURM_CLUSTERS SLURM_BITSTR_LEN SLURM_TOPO_LEN SLURM_DEBUG_FLAGS
fj_time_set=${SLURM_TIME_FORMAT+1} fj_time_format=${SLURM_TIME_FORMAT-}
SLURM_TIME_FORMAT=%s
export SLURM_TIME_FORMAT

# fj_user_time: the user's own SLURM_TIME_FORMAT back (in the subshell that runs sbatch, so
# the job has it).
fj_user_time() {
  if [ -n "$fj_time_set" ]; then SLURM_TIME_FORMAT=$fj_time_format; else unset SLURM_TIME_FORMAT; fi
}

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
