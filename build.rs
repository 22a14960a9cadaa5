//! Embeds the libtorch library directory as an rpath so the binary runs without LD_LIBRARY_PATH
//! (unless `GNN_SOUP_NO_RPATH` is set, as for the GPU bundle),
//! and keeps libtorch_cuda linked even though no symbol of it is referenced directly (otherwise
//! `--as-needed` drops it and CUDA silently reports as unavailable); compiles the C++ operators
//! in `csrc/` against the same libtorch. Refuses a libtorch whose version does not match the tch
//! release in Cargo.lock (`scripts/torch-versions.tsv`), before the link fails in obscure ways.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    // The real directory, not the `.venv/libtorch` link: a binary keeps the libtorch it was built
    // against even when set-up later points the link at another torch.
    let lib = std::fs::canonicalize(&lib).unwrap_or_else(|_| lib.into());
    let root = lib.parent().expect("libtorch's lib directory has a parent");
    let version = torch_version(&root.join("include"));
    if let Some((major, minor, patch)) = version {
        println!("cargo:rustc-env=GNN_SOUP_TORCH_VERSION={major}.{minor}.{patch}");
        check_tch_release(major, minor, root);
    } else {
        println!("cargo:rustc-env=GNN_SOUP_TORCH_VERSION=unknown");
    }
    // The GPU bundle's binaries carry no run path: on the machine they are copied to, the runner
    // finds libtorch through python3 and sets LD_LIBRARY_PATH, and nothing else may be found.
    println!("cargo:rerun-if-env-changed=GNN_SOUP_NO_RPATH");
    if std::env::var_os("GNN_SOUP_NO_RPATH").is_none() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
    compile_operators(root);
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}

/// `TORCH_VERSION_MAJOR/MINOR/PATCH` from libtorch's version header (under
/// `headeronly/` in current releases, under `csrc/api` in older ones).
fn torch_version(include: &Path) -> Option<(u32, u32, u32)> {
    let headers = ["torch/headeronly/version.h", "torch/csrc/api/include/torch/version.h"];
    let text = headers.iter().find_map(|h| std::fs::read_to_string(include.join(h)).ok())?;
    let define = |name: &str| {
        text.lines().find_map(|l| {
            l.trim().strip_prefix("#define ")?.strip_prefix(name)?.trim().parse().ok()
        })
    };
    Some((
        define("TORCH_VERSION_MAJOR ")?,
        define("TORCH_VERSION_MINOR ")?,
        define("TORCH_VERSION_PATCH ")?,
    ))
}

/// The tch release Cargo.lock selects must be the one `scripts/torch-versions.tsv` names for
/// this torch: tch's generated C++ compiles against other versions' headers only by luck.
fn check_tch_release(major: u32, minor: u32, root: &Path) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (Ok(table), Ok(lock)) = (
        std::fs::read_to_string(manifest.join("scripts/torch-versions.tsv")),
        std::fs::read_to_string(manifest.join("Cargo.lock")),
    ) else {
        return; // built as someone else's dependency: their lock file, their choice
    };
    println!("cargo:rerun-if-changed=scripts/torch-versions.tsv");
    let torch = format!("{major}.{minor}");
    let rows: Vec<(&str, &str)> = table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t'))
        .map(|(t, c)| (t.trim(), c.trim()))
        .collect();
    let supported = rows.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ");
    let Some((_, wanted)) = rows.iter().find(|(t, _)| *t == torch) else {
        refuse(format!(
            "libtorch at {} is torch {torch}; gnn-soup builds against torch {supported}.\n\
             Install one of those (or unset LIBTORCH and run scripts/setup.sh, which installs \
             the newest into .venv).",
            root.display()
        ));
    };
    let locked = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"tch\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"')))
        .unwrap_or("?");
    if locked != *wanted {
        refuse(format!(
            "libtorch at {} is torch {torch}, which needs tch {wanted}, but Cargo.lock selects \
             tch {locked}.\nRun scripts/setup.sh (it pins the matching tch), or by hand: \
             cargo update -p tch --precise {wanted}",
            root.display()
        ));
    }
}

/// Stops the build with the reason alone (cargo prints a build script's stderr), not a panic.
fn refuse(reason: String) -> ! {
    eprintln!("\nerror: {reason}\n");
    std::process::exit(1)
}

/// `csrc/*.cpp`, built as torch-sys builds its own wrapper (C++17, the libtorch wheel's ABI).
fn compile_operators(root: &Path) {
    println!("cargo:rerun-if-changed=csrc");
    let include = root.join("include");
    cc::Build::new()
        .cpp(true)
        .file("csrc/sparse_ops.cpp")
        .file("csrc/device_memory.cpp")
        .file("csrc/cpu_allocator.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .compile("gnn_soup_ops");
    // The sparse product's own kernels, one per x86 instruction set (the CPU's is picked at run
    // time). They include no libtorch header: see csrc/spmm_rows.inc.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
        for (isa, flags) in [("avx512", &["-mavx512f"][..]), ("avx2", &["-mavx2", "-mfma"][..])] {
            let mut build = cc::Build::new();
            build.cpp(true).file(format!("csrc/spmm_{isa}.cpp")).flag("-std=c++17").opt_level(3);
            for flag in flags {
                build.flag(flag);
            }
            build.warnings(false).compile(&format!("gnn_soup_spmm_{isa}"));
        }
    }
}
