//! `gnn-soup slurm train`: a training run split over a Slurm array job. Slurm does the
//! scheduling; gnn-soup only writes what it runs: the shared init first (`train --init-only`, so
//! every task checks against one file), an array of `train --shard $SLURM_ARRAY_TASK_ID/N` tasks
//! into one shared directory, and a job that starts when all of them succeeded
//! (`--dependency=afterok`) and runs `train --collect` (and a soup).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;

use super::args::{Cli, Command, SlurmTrainArgs};

/// `text` as one word for bash: unchanged when it is plain, otherwise in single quotes.
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn words(args: &[String]) -> String {
    args.iter().map(|a| shell_word(a)).collect::<Vec<_>>().join(" ")
}

/// The `#SBATCH` lines every script of the run shares, and the job name.
fn header(name: &str, log: &Path, args: &SlurmTrainArgs, cwd: &Path) -> String {
    let mut h = format!(
        "#!/usr/bin/env bash\n#SBATCH --job-name={name}\n#SBATCH --output={}\n#SBATCH --chdir={}\n",
        shell_word(&log.display().to_string()),
        shell_word(&cwd.display().to_string())
    );
    for (flag, value) in
        [("partition", &args.partition), ("account", &args.account), ("mem", &args.mem)]
    {
        if let Some(v) = value {
            h += &format!("#SBATCH --{flag}={}\n", shell_word(v));
        }
    }
    h
}

pub fn train(args: &SlurmTrainArgs) -> Result<()> {
    // The training arguments are checked as `gnn-soup train` would check them, now, not on the
    // cluster an hour later.
    let parsed = Cli::try_parse_from(
        ["gnn-soup".to_string(), "train".to_string()].into_iter().chain(args.train.iter().cloned()),
    )
    .map_err(|e| {
        anyhow::anyhow!("the arguments after -- are not valid `gnn-soup train` arguments:\n{e}")
    })?;
    let Some(Command::Train(train)) = parsed.command else {
        bail!("expected `gnn-soup train` arguments after --")
    };
    if train.shard.is_some() || train.collect.is_some() || train.init_only {
        bail!("leave --shard, --collect and --init-only out: each task gets its --shard, and the last job collects");
    }
    let Some(out) = train.out.clone() else {
        bail!("the training arguments need --out: the directory every task writes into (on storage all nodes share)")
    };
    let cwd = std::env::current_dir().context("the current directory")?;
    let exe = std::env::current_exe().context("the path of this gnn-soup binary")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let dir = args.script_dir.clone().unwrap_or_else(|| out.join("slurm"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let abs = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) };
    let dir = abs(&dir);
    let n = args.array;
    let gnn = shell_word(&exe.display().to_string());
    let train_words = words(&args.train);

    let mut array = header("gnn-soup-train", &dir.join("train-%A_%a.log"), args, &cwd);
    array += &format!("#SBATCH --array=0-{}\n", n - 1);
    for (flag, value) in [("gres", &args.gres), ("time", &args.time)] {
        if let Some(v) = value {
            array += &format!("#SBATCH --{flag}={}\n", shell_word(v));
        }
    }
    if let Some(c) = args.cpus_per_task {
        array += &format!("#SBATCH --cpus-per-task={c}\n");
    }
    array += &format!(
        "# Written by `gnn-soup slurm train`. Task I trains the ingredients i with i % {n} == I into\n# {}; a task run again resumes (finished ingredients are kept).\nset -euo pipefail\nexec {gnn} train {train_words} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\"\n",
        out.display()
    );

    let mut collect = header("gnn-soup-collect", &dir.join("collect-%j.log"), args, &cwd);
    collect += &format!("# Written by `gnn-soup slurm train`: runs once every training task succeeded.\nset -euo pipefail\n{gnn} train --collect {}\n", shell_word(&out.display().to_string()));
    if let Some(soup_out) = &args.soup_out {
        let recipe = args.soup_recipe.as_ref().map_or(String::new(), |r| {
            format!(" --recipe {}", shell_word(&abs(r).display().to_string()))
        });
        collect += &format!(
            "{gnn} soup --ingredients {} --strategy {}{recipe} --out {}\n",
            shell_word(&out.display().to_string()),
            shell_word(&args.soup_strategy),
            shell_word(&soup_out.display().to_string())
        );
    }

    let submit = format!(
        "#!/usr/bin/env bash\n# Written by `gnn-soup slurm train`: the shared init, then the array, then the collecting job.\nset -euo pipefail\ncd {}\n{gnn} train {train_words} --init-only\narray=$(sbatch --parsable {})\narray=${{array%%;*}}\ncollect=$(sbatch --parsable --dependency=afterok:\"$array\" {})\ncollect=${{collect%%;*}}\necho \"submitted: training array $array ({n} tasks), then job $collect (collect{}) once all succeeded\"\necho \"logs: {}/\"\n",
        shell_word(&cwd.display().to_string()),
        shell_word(&dir.join("train.sbatch").display().to_string()),
        shell_word(&dir.join("collect.sbatch").display().to_string()),
        if args.soup_out.is_some() { " and soup" } else { "" },
        dir.display()
    );
    let files: [(PathBuf, String); 3] = [
        (dir.join("train.sbatch"), array),
        (dir.join("collect.sbatch"), collect),
        (dir.join("submit.sh"), submit),
    ];
    if !args.overwrite {
        if let Some((f, _)) = files.iter().find(|(f, _)| f.exists()) {
            bail!("{} already exists (pass --overwrite to replace the scripts)", f.display());
        }
    }
    for (f, text) in &files {
        crate::checkpoint::write_atomic(f, text.as_bytes())?;
    }
    let submit_path = dir.join("submit.sh");
    if !args.submit {
        eprintln!(
            "wrote {}, {} and {}",
            files[0].0.display(),
            files[1].0.display(),
            submit_path.display()
        );
        println!("bash {}", shell_word(&submit_path.display().to_string()));
        return Ok(());
    }
    let status = std::process::Command::new("bash")
        .arg(&submit_path)
        .status()
        .with_context(|| format!("cannot run {}", submit_path.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); is sbatch on the PATH, and is the cluster up?",
            submit_path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words_survive_bash() {
        assert_eq!(shell_word("csbm:nodes=400,train=60"), "csbm:nodes=400,train=60");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
    }
}
