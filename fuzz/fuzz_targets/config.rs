//! A config file as an operator writes it: parsing never panics; it is accepted or every problem is named.
#![no_main]

use cosftpd::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(errors) = Config::parse_str(text) {
        assert!(!errors.errors.is_empty());
    }
});
