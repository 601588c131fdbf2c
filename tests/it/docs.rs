//! The docs' examples run: every `console` block in `docs/*.md` is a command whose output
//! must match (trycmd, which clap uses for its own docs), so a doc that drifts fails here.
#[test]
fn the_commands_in_the_docs_run_as_written() {
    let state = tempfile::tempdir().unwrap();
    trycmd::TestCases::new()
        .register_bin(
            "anorag-tui",
            std::path::Path::new(env!("CARGO_BIN_EXE_anorag-tui")),
        )
        .env("ANORAG_STATE_DIR", state.path().display().to_string())
        .env("NO_COLOR", "1")
        .case("docs/*.md");
}
