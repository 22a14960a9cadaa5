//! Embeds the libtorch library directory as an rpath so the binary runs without LD_LIBRARY_PATH,
//! and keeps libtorch_cuda linked even though no symbol of it is referenced directly (otherwise
//! `--as-needed` drops it and CUDA silently reports as unavailable); compiles the C++ operators
//! in `csrc/` against the same libtorch.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    compile_operators(Path::new(&lib));
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}

/// `csrc/*.cpp`, built as torch-sys builds its own wrapper (C++17, the libtorch wheel's ABI).
fn compile_operators(lib: &Path) {
    println!("cargo:rerun-if-changed=csrc");
    let root = lib.parent().expect("libtorch's lib directory has a parent");
    let include = root.join("include");
    cc::Build::new()
        .cpp(true)
        .file("csrc/sparse_ops.cpp")
        .file("csrc/device_memory.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .compile("gnn_soup_ops");
}
