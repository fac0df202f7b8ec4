//! Generates the protobuf types with prost from `proto/*.proto`, compiled by `protox`
//! (pure Rust), so no system `protoc` is needed.
//!
//! Two sets are generated from the same source:
//! - `pyxis.rpc` / `pyxis.store`: the public types. proto2 `required` fields are plain
//!   (non-`Option`) fields that prost always encodes, so required fields are always emitted.
//! - `pyxis.wire.rpc`: a private mirror in which every `required` is `optional`, so the
//!   decoder can see which required fields were absent and refuse the message by name
//!   (prost does not enforce proto2 `required` by itself).

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    println!("cargo:rerun-if-changed=proto/rpc.proto");
    println!("cargo:rerun-if-changed=proto/store.proto");

    let rpc = fs::read_to_string("proto/rpc.proto").expect("read proto/rpc.proto");
    let mirror = rpc
        .replace("package pyxis.rpc;", "package pyxis.wire.rpc;")
        .replace("required ", "optional ");
    let mirror_dir = out.join("mirror");
    fs::create_dir_all(&mirror_dir).expect("create mirror dir");
    fs::write(mirror_dir.join("wire_rpc.proto"), mirror).expect("write mirror proto");

    let fds = protox::compile(["rpc.proto", "store.proto"], ["proto"]).expect("compile protos");
    let mirror_fds =
        protox::compile(["wire_rpc.proto"], [mirror_dir.as_path()]).expect("compile mirror");

    let mut cfg = prost_build::Config::new();
    cfg.bytes(["."]);
    cfg.compile_fds(fds)
        .expect("generate pyxis.rpc / pyxis.store");
    let mut cfg = prost_build::Config::new();
    cfg.bytes(["."]);
    cfg.compile_fds(mirror_fds).expect("generate mirror");
}
