//! The protobuf code in `src/generated/` is checked in, so that crates depending on
//! pyxis-proto build without `protox`, `prost-build` and their build-time dependencies.
//! This test regenerates it from `proto/*.proto` and fails if the checked-in files differ.
//! After changing a `.proto` file, rewrite them with
//! `PYXIS_WRITE_GENERATED=1 cargo test -p pyxis-proto --test generated`.
//!
//! Two sets are generated from the same source:
//! - `pyxis.rpc` / `pyxis.store`: the public types. proto2 `required` fields are plain
//!   (non-`Option`) fields that prost always encodes, so required fields are always emitted.
//! - `pyxis.wire.rpc`: a private mirror in which every `required` is `optional`, so the
//!   decoder can see which required fields were absent and refuse the message by name
//!   (prost does not enforce proto2 `required` by itself).

use std::fs;
use std::path::{Path, PathBuf};

/// The files prost-build writes, one per protobuf package.
const FILES: [&str; 3] = ["pyxis.rpc.rs", "pyxis.store.rs", "pyxis.wire.rpc.rs"];

/// Generates every file of [`FILES`] into `out`.
fn generate(manifest: &Path, out: &Path) {
    let proto = manifest.join("proto");
    let rpc = fs::read_to_string(proto.join("rpc.proto")).expect("read proto/rpc.proto");
    let mirror = rpc
        .replace("package pyxis.rpc;", "package pyxis.wire.rpc;")
        .replace("required ", "optional ");
    let mirror_dir = out.join("mirror");
    fs::create_dir_all(&mirror_dir).expect("create the mirror directory");
    fs::write(mirror_dir.join("wire_rpc.proto"), mirror).expect("write the mirror proto");

    let fds = protox::compile(["rpc.proto", "store.proto"], [&proto]).expect("compile protos");
    let mirror_fds = protox::compile(["wire_rpc.proto"], [&mirror_dir]).expect("compile mirror");
    for set in [fds, mirror_fds] {
        let mut config = prost_build::Config::new();
        config.bytes(["."]).out_dir(out);
        config.compile_fds(set).expect("generate the Rust code");
    }
}

#[test]
fn checked_in_protobuf_code_matches_the_proto_files() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pyxis-proto-generated");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).expect("create the output directory");
    generate(&manifest, &out);

    let write = std::env::var_os("PYXIS_WRITE_GENERATED").is_some();
    let mut stale = Vec::new();
    for file in FILES {
        let fresh = fs::read_to_string(out.join(file)).expect("read the generated file");
        let checked_in = manifest.join("src/generated").join(file);
        if write {
            fs::write(&checked_in, &fresh).expect("write src/generated");
        } else if fs::read_to_string(&checked_in).ok().as_deref() != Some(fresh.as_str()) {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "src/generated/{stale:?} differ from what proto/*.proto generates; rewrite them with \
         PYXIS_WRITE_GENERATED=1 cargo test -p pyxis-proto --test generated"
    );
}
