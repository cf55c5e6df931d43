//! `openapi/openapi.json` is the committed contract; it must match what the code
//! generates. After an intended API change run `UPDATE_OPENAPI=1 cargo test --test openapi_spec`.

#[test]
fn committed_spec_matches_generated() {
    let generated = format!("{}\n", confab::http::spec_json());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json differs from the generated spec; if the API change is intended, run \
         `UPDATE_OPENAPI=1 cargo test --test openapi_spec` and commit the file"
    );
}
