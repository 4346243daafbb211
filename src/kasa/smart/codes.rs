//! The SMART error codes (python-kasa's names) and what each means for a
//! retry: a leaf, so that the error type and the AES transport can name and
//! classify a code without depending on the SMART device.

/// The known SMART error codes: `(code, python-kasa's name)`.
pub(crate) const ERROR_CODES: &[(i64, &str)] = &[
    (0, "SUCCESS"),
    (9999, "SESSION_TIMEOUT_ERROR"),
    (1200, "MULTI_REQUEST_FAILED_ERROR"),
    (1112, "HTTP_TRANSPORT_FAILED_ERROR"),
    (1111, "LOGIN_FAILED_ERROR"),
    (1100, "HAND_SHAKE_FAILED_ERROR"),
    (1003, "TRANSPORT_UNKNOWN_CREDENTIALS_ERROR"),
    (1002, "TRANSPORT_NOT_AVAILABLE_ERROR"),
    (1001, "CMD_COMMAND_CANCEL_ERROR"),
    (1000, "NULL_TRANSPORT_ERROR"),
    (-1, "COMMON_FAILED_ERROR"),
    (-1001, "UNSPECIFIC_ERROR"),
    (-1002, "UNKNOWN_METHOD_ERROR"),
    (-1003, "JSON_DECODE_FAIL_ERROR"),
    (-1004, "JSON_ENCODE_FAIL_ERROR"),
    (-1005, "AES_DECODE_FAIL_ERROR"),
    (-1006, "REQUEST_LEN_ERROR_ERROR"),
    (-1007, "CLOUD_FAILED_ERROR"),
    (-1008, "PARAMS_ERROR"),
    (-1010, "INVALID_PUBLIC_KEY_ERROR"),
    (-1101, "SESSION_PARAM_ERROR"),
    (-1201, "QUICK_SETUP_ERROR"),
    (-1301, "DEVICE_ERROR"),
    (-1302, "DEVICE_NEXT_EVENT_ERROR"),
    (-1401, "FIRMWARE_ERROR"),
    (-1402, "FIRMWARE_VER_ERROR_ERROR"),
    (-1501, "LOGIN_ERROR"),
    // plugp100's name; TPAP devices answer a wrong password with it.
    (-2203, "ERR_STAT_ACCESS"),
    (-1601, "TIME_ERROR"),
    (-1602, "TIME_SYS_ERROR"),
    (-1603, "TIME_SAVE_ERROR"),
    (-1701, "WIRELESS_ERROR"),
    (-1702, "WIRELESS_UNSUPPORTED_ERROR"),
    (-1801, "SCHEDULE_ERROR"),
    (-1802, "SCHEDULE_FULL_ERROR"),
    (-1803, "SCHEDULE_CONFLICT_ERROR"),
    (-1804, "SCHEDULE_SAVE_ERROR"),
    (-1805, "SCHEDULE_INDEX_ERROR"),
    (-1901, "COUNTDOWN_ERROR"),
    (-1902, "COUNTDOWN_CONFLICT_ERROR"),
    (-1903, "COUNTDOWN_SAVE_ERROR"),
    (-2001, "ANTITHEFT_ERROR"),
    (-2002, "ANTITHEFT_CONFLICT_ERROR"),
    (-2003, "ANTITHEFT_SAVE_ERROR"),
    (-2101, "ACCOUNT_ERROR"),
    (-2201, "STAT_ERROR"),
    (-2202, "STAT_SAVE_ERROR"),
    (-2301, "DST_ERROR"),
    (-2302, "DST_SAVE_ERROR"),
    (-3001, "VACUUM_BATTERY_LOW"),
    (-40101, "SYSTEM_ERROR"),
    (-40209, "INVALID_ARGUMENTS"),
    (-40401, "SESSION_EXPIRED"),
    (-40411, "BAD_USERNAME"),
    (-60502, "UNKNOWN_USERNAME"),
    (-40412, "HOMEKIT_LOGIN_FAIL"),
    (-40404, "DEVICE_BLOCKED"),
    (-40405, "DEVICE_FACTORY"),
    (-40406, "OUT_OF_LIMIT"),
    (-40407, "OTHER_ERROR"),
    (-40408, "SYSTEM_BLOCKED"),
    (-40409, "NONCE_EXPIRED"),
    (-90000, "FFS_NONE_PWD"),
    (40108, "TIMEOUT_ERROR"),
    (-40106, "UNSUPPORTED_METHOD"),
    (-40109, "ONE_SECOND_REPEAT_REQUEST"),
    (-40413, "INVALID_NONCE"),
    (-40210, "PROTOCOL_FORMAT_ERROR"),
    (-40321, "IP_CONFLICT"),
];

/// python-kasa's name for a code, `UNKNOWN` for a code it does not know.
pub(crate) fn error_name(code: i64) -> &'static str {
    ERROR_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| *n)
        .unwrap_or("UNKNOWN")
}

/// Codes after which python-kasa drops the session and tries again.
pub(crate) fn is_session_error(code: i64) -> bool {
    matches!(code, 1002 | 1112 | -1001 | 9999 | -40401 | -40413)
}

/// Codes that mean the login was refused (python-kasa's authentication errors).
pub(crate) fn is_auth_error(code: i64) -> bool {
    matches!(code, -1501 | 1111 | -1005 | 1100 | 1003 | -40412)
}

/// Whether a retry may succeed. Permanent: refused logins, methods or
/// parameters the device does not take, a blocked device. Everything else,
/// unknown codes included, may pass on a later attempt.
pub(crate) fn is_transient(code: i64) -> bool {
    !(is_auth_error(code)
        || matches!(
            code,
            -1002 | -1008 | -1010 | -40106 | -40209 | -40210 | -40404 | -40408 | -40411 | -60502
        ))
}

/// Codes that mean the device does not have the method at all.
pub(crate) fn is_unsupported(code: i64) -> bool {
    matches!(code, -1002 | -40106)
}

/// What to do about a code, appended to the error message.
pub(crate) fn error_advice(code: i64) -> &'static str {
    if is_session_error(code) {
        "; the session is renewed on the next try"
    } else if matches!(code, -1002 | -40106) {
        "; this model or firmware does not have that command"
    } else if matches!(code, -1008 | -40209) {
        "; the device refused the parameters"
    } else if matches!(code, -40404 | -40408) {
        "; the device blocks this client for now: wait before retrying"
    } else if matches!(code, -1903..=-1901) {
        "; the countdown table refused the rule (a rule set in the app?)"
    } else if code == -40109 {
        "; requests too close together"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_of_codes() {
        assert_eq!(error_name(-1501), "LOGIN_ERROR");
        assert_eq!(error_name(424242), "UNKNOWN");
        assert!(is_auth_error(-1501) && !is_transient(-1501));
        assert!(is_session_error(9999) && is_transient(9999));
        assert!(!is_transient(-1002) && !is_transient(-1008));
        assert!(is_transient(-1) && is_transient(424242));
        // The table has no duplicate code.
        let mut codes: Vec<i64> = ERROR_CODES.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ERROR_CODES.len());
    }
}
