//! The config parser: any TOML text. An error names a line of the file; an accepted config holds
//! what validation promises, and everything derived from it can be computed.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tonedesk::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.toml");
    match Config::parse(text, file) {
        Err(e) => {
            if let Some(line) = e.line {
                let lines = text.split('\n').count();
                assert!((1..=lines).contains(&line), "line {line} of {lines}");
            }
            assert!(!e.message.is_empty());
            assert!(e.to_string().starts_with("fuzz.toml"));
        }
        Ok(config) => {
            let mut names = BTreeSet::new();
            for a in &config.accounts {
                assert!(!a.name.trim().is_empty());
                assert!(names.insert(a.name.as_str()), "{} twice", a.name);
                assert!(!a.name.starts_with("demo-"));
                if let Some(url) = &a.base_url {
                    assert!(url.starts_with("http://") || url.starts_with("https://"));
                }
            }
            assert!(config.poll.interval_secs >= 1);
            assert!((1..=300).contains(&config.poll.request_timeout_secs));
            assert!(!config.initials().is_empty() || config.initials.is_some());
            let _ = config.signoff();
            let _ = config.contacts();
            let _ = config.tone_config();
        }
    }
});
