//! The stand-in for the original web client (tests/web-client) laid out as a static site,
//! with its two backend origins written into config.js as the original hard-codes them.

use std::path::Path;

/// A directory to serve as `web_root`: the page, socket.io-client's browser build and a
/// config.js naming `user_service` and `chat_service`.
pub fn original_client_site(user_service: &str, chat_service: &str) -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let site = tempfile::tempdir().expect("temp dir");
    for file in ["index.html", "client.js"] {
        std::fs::copy(root.join("web-client").join(file), site.path().join(file)).expect("copy page");
    }
    // The original's export has a page per route; `/chat` is the one it lives on.
    std::fs::copy(root.join("web-client/index.html"), site.path().join("chat.html")).expect("copy page");
    let bundle = root.join("js/node_modules/socket.io-client/dist/socket.io.min.js");
    std::fs::copy(&bundle, site.path().join("socket.io.min.js"))
        .unwrap_or_else(|e| panic!("{}: {e} (run `npm ci --prefix tests/js`)", bundle.display()));
    let config =
        format!("window.CONFAB_ORIGINS = {{ user_service: {:?}, chat_service: {:?} }};\n", user_service, chat_service);
    std::fs::write(site.path().join("config.js"), config).expect("write config.js");
    site
}
