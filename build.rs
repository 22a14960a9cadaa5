//! Embeds the libtorch library directory as an rpath so the binary runs without LD_LIBRARY_PATH,
//! and keeps libtorch_cuda linked even though no symbol of it is referenced directly (otherwise
//! `--as-needed` drops it and CUDA silently reports as unavailable).
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
