//! `fenton completions SHELL` and `fenton man`: generated from the clap types. clap completes
//! what it knows statically; for bash, zsh and fish fenton adds what only the config and the
//! box know: profile names after `-p`, and job ids and names after `logs` and `kill`.

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, ManArgs};
use crate::exit::Exit;
use crate::ui;

pub fn completions(shell: Shell) -> Result<Exit> {
    crate::out!("{}", script(shell));
    Ok(Exit::Success)
}

/// The completion script for `shell`, with the dynamic parts where that shell takes them.
fn script(shell: Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "fenton", &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    match shell {
        Shell::Bash => format!("{text}{BASH}"),
        Shell::Zsh => zsh(&text),
        Shell::Fish => fish(&text),
        _ => text,
    }
}

/// Wraps clap's `_fenton`: profiles after -p, jobs as the first word after logs/kill.
const BASH: &str = r#"
# fenton's own: profile names and job ids, which only the config and the box know.
_fenton_dynamic() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local i word command="" values=0
    local -a given=()
    case "$prev" in
        -p|--profile)
            COMPREPLY=($(compgen -W "$(fenton config profiles 2>/dev/null | cut -f1 | cut -c3-)" -- "$cur"))
            compopt +o default +o bashdefault 2>/dev/null
            return 0
            ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case "$word" in
            -p|--profile|-c|--config)
                given+=("$word" "${COMP_WORDS[i+1]}")
                i=$((i + 1))
                ;;
            --color|-n|--lines|--grace) i=$((i + 1)) ;;
            -*) ;;
            *) if [[ -z "$command" ]]; then command=$word; else values=$((values + 1)); fi ;;
        esac
    done
    if [[ ( "$command" == logs || "$command" == kill ) && $values == 0 && "$cur" != -* ]]; then
        COMPREPLY=($(compgen -W "$(fenton "${given[@]}" jobs 2>/dev/null | awk 'NR > 1 { print $1; if ($2 != "") print $2 }')" -- "$cur"))
        compopt +o default +o bashdefault 2>/dev/null
        return 0
    fi
    _fenton "$@"
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _fenton_dynamic -o nosort -o bashdefault -o default fenton
else
    complete -F _fenton_dynamic -o bashdefault -o default fenton
fi
"#;

const ZSH: &str = r#"
# fenton's own: profile names and job ids, which only the config and the box know.
_fenton_profiles() {
    local -a profiles
    profiles=(${(f)"$(fenton config profiles 2>/dev/null | cut -f1 | cut -c3-)"})
    _describe profile profiles
}
_fenton_jobs() {
    local -a jobs
    jobs=(${(f)"$(fenton jobs 2>/dev/null | awk 'NR > 1 { print $1 ":" $2; if ($2 != "") print $2 ":" $1 }')"})
    _describe job jobs
}

"#;

/// clap's zsh script, with the profile and job arguments completed by fenton's functions.
fn zsh(text: &str) -> String {
    let mut out = String::new();
    let mut section = "";
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('(') && trimmed.ends_with(')') {
            section = trimmed;
        }
        if trimmed.starts_with("if [ \"$funcstack[1]\" = \"_fenton\" ]") {
            out.push_str(ZSH);
        }
        let profile = trimmed.starts_with("'-p+[") || trimmed.starts_with("'--profile=[");
        let job = matches!(section, "(logs)" | "(kill)") && trimmed.starts_with("':job -- ");
        if profile || job {
            let with = if profile {
                ":_fenton_profiles'"
            } else {
                ":_fenton_jobs'"
            };
            out.push_str(&line.replacen(":_default'", with, 1));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

const FISH: &str = r#"
# fenton's own: profile names and job ids, which only the config and the box know.
function __fenton_profiles
    fenton config profiles 2>/dev/null | string replace -r '^. ' ''
end
function __fenton_jobs
    set -l given
    set -l words (commandline -opc)
    for i in (seq 2 (math (count $words) - 1))
        switch $words[$i]
            case -p --profile -c --config
                set -a given $words[$i] $words[(math $i + 1)]
        end
    end
    fenton $given jobs 2>/dev/null | awk 'NR > 1 { print $1 "\t" $2; if ($2 != "") print $2 "\t" $1 }'
end
# Also where clap's rules miss it: after a first `-p`, before any command.
function __fenton_after_profile
    set -l words (commandline -opc)
    contains -- $words[-1] -p --profile
end
complete -c fenton -n __fenton_after_profile -f -a "(__fenton_profiles)"
complete -c fenton -n "__fish_fenton_using_subcommand logs; and test (count (commandline -opc | string match -v -- '-*')) -le 2" -f -a "(__fenton_jobs)"
complete -c fenton -n "__fish_fenton_using_subcommand kill; and test (count (commandline -opc | string match -v -- '-*')) -le 2" -f -a "(__fenton_jobs)"
"#;

/// clap's fish script, with `-p` completing profile names (and no files).
fn fish(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line);
        if line.contains(" -s p -l profile ") && line.ends_with(" -r") {
            out.push_str(" -f -a \"(__fenton_profiles)\"");
        }
        out.push('\n');
    }
    out.push_str(FISH);
    out
}

/// The page for fenton names a page per command (`fenton-run(1)`…): `--dir` writes them all.
pub fn man(args: ManArgs) -> Result<Exit> {
    let Some(dir) = args.dir else {
        clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
        return Ok(Exit::Success);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), &dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
    ui::info(format_args!(
        "wrote fenton.1 and a page per command into {}",
        dir.display()
    ));
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zsh_and_fish_complete_profiles_and_jobs_with_fentons_functions() {
        let zsh = script(Shell::Zsh);
        let profile_specs: Vec<&str> = zsh
            .lines()
            .filter(|l| l.trim_start().starts_with("'--profile=["))
            .collect();
        assert!(!profile_specs.is_empty());
        assert!(
            profile_specs
                .iter()
                .all(|l| l.contains(":_fenton_profiles'")),
            "{profile_specs:#?}"
        );
        assert_eq!(zsh.matches(":_fenton_jobs'").count(), 2, "logs and kill");
        assert!(zsh.find("_fenton_profiles() {") < zsh.find("if [ \"$funcstack[1]\""));
        let fish = script(Shell::Fish);
        let profile_lines: Vec<&str> = fish
            .lines()
            .filter(|l| l.contains(" -l profile "))
            .collect();
        assert!(
            profile_lines
                .iter()
                .all(|l| l.ends_with("-f -a \"(__fenton_profiles)\"")),
            "{profile_lines:#?}"
        );
    }
}
