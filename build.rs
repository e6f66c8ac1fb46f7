//! `cfg(cli)`: the native build, where the command line's argument parsing (clap) is derived
//! from the settings' own declarations; the wasm build carries no clap.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cli)");
    if std::env::var("CARGO_CFG_TARGET_FAMILY").as_deref() != Ok("wasm") {
        println!("cargo::rustc-cfg=cli");
    }
}
