//! The `ferry` binary's tests, one binary with a module per concern (each test binary links
//! the AWS SDK, so CI pays for every one).

mod credentials;
mod plan;
mod progress;
mod run_restart;
mod start;

/// The `ferry` binary with the key pairs of a source and a destination emulator in the
/// variables the tests' jobs name (`T_SRC_AK`/`T_SRC_SK`, `T_DST_AK`/`T_DST_SK`).
fn ferry_signed_by(
    source: &oss_emulator::Emulator,
    dest: &oss_emulator::Emulator,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.env("T_SRC_AK", source.access_key_id())
        .env(
            "T_SRC_SK",
            oss_emulator::test_secret(&source.access_key_id()),
        )
        .env("T_DST_AK", dest.access_key_id())
        .env("T_DST_SK", oss_emulator::test_secret(&dest.access_key_id()));
    cmd
}
