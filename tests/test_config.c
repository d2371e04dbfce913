/*
 * test_config: the postgresql.conf-style parser, the -c overrides, the
 * defaults and the messages a user sees when a setting is wrong.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>

/*
 * By path: automake puts -I. (the top build directory) before -I src, so a
 * plain "config.h" would pick up any top-level config.h (an autoconf
 * header, or a stale one) instead of src/config.h.
 */
#include "../src/config.h"
#include "../src/fingerprint.h"

#define ERRLEN	512

/* Forward secrecy and AEAD only: stricter than PostgreSQL's default. */
#define DEFAULT_CIPHERS	"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static int
setup_config(void **state)
{
	*state = config_new();
	return *state == NULL ? -1 : 0;
}

static int
teardown_config(void **state)
{
	config_unref(*state);
	return 0;
}

#define TEST(f)	cmocka_unit_test_setup_teardown(f, setup_config, \
	    teardown_config)

/* Parse text as if it were the file "name"; err is cleared first. */
static int
parse(struct config *cfg, const char *text, const char *name, char *err)
{
	memset(err, 0, ERRLEN);
	return config_parse_text(cfg, text, strlen(text), name, err, ERRLEN);
}

static int
set_opt(struct config *cfg, const char *arg, char *err)
{
	memset(err, 0, ERRLEN);
	return config_set_option(cfg, arg, err, ERRLEN);
}

/* Fails with the whole message when a part is missing. */
static void
assert_err_has(const char *err, const char *part)
{
	if (strstr(err, part) == NULL)
		fail_msg("error message lacks \"%s\": \"%s\"", part, err);
}

/* One line "key = value" in file "t.conf" must be rejected. */
static void
assert_rejected(struct config *cfg, const char *line, char *err)
{
	if (parse(cfg, line, "t.conf", err) != -1)
		fail_msg("accepted: %s", line);
	assert_err_has(err, "t.conf:1");
}

/* ------------------------------------------------------------------ */
/* Defaults                                                             */
/* ------------------------------------------------------------------ */

static void
test_defaults_match_documentation(void **state)
{
	struct config	*cfg = *state;

	assert_int_equal(cfg->refcount, 1);
	assert_null(cfg->config_file);
	assert_string_equal(cfg->listen_addresses, "localhost");
	assert_int_equal(cfg->port, 6432);
	assert_string_equal(cfg->backend_host, "localhost");
	assert_int_equal(cfg->backend_port, 5432);
	assert_true(cfg->ssl);
	assert_false(cfg->require_ssl);
	assert_string_equal(cfg->ssl_cert_file, "server.crt");
	assert_string_equal(cfg->ssl_key_file, "server.key");
	assert_int_equal(cfg->ssl_min_protocol_version, CONFIG_TLS_1_2);
	assert_int_equal(cfg->ssl_max_protocol_version, CONFIG_TLS_ANY);
	assert_string_equal(cfg->ssl_ciphers, DEFAULT_CIPHERS);
	assert_int_equal(cfg->authentication_timeout, 60000);
	assert_int_equal(cfg->max_connections, 1000);
	assert_false(cfg->log_connections);
}

static void
test_defaults_have_origin_default_and_validate(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN] = "";

	for (int k = 0; k < CONFIG_NKEYS; k++) {
		assert_string_equal(config_origin(cfg, (enum config_key)k),
		    "default");
		assert_non_null(config_key_name((enum config_key)k));
	}
	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
}

static void
test_key_names_are_the_config_file_spellings(void **state)
{
	(void)state;
	assert_string_equal(config_key_name(CONFIG_PORT), "port");
	assert_string_equal(config_key_name(CONFIG_REQUIRE_SSL), "require_ssl");
	assert_string_equal(config_key_name(CONFIG_SSL_MIN_PROTOCOL_VERSION),
	    "ssl_min_protocol_version");
	assert_string_equal(config_key_name(CONFIG_AUTHENTICATION_TIMEOUT),
	    "authentication_timeout");
	assert_string_equal(config_key_name(CONFIG_LOG_CONNECTIONS),
	    "log_connections");
	assert_string_equal(config_tls_version_name(CONFIG_TLS_1_2), "TLSv1.2");
	assert_string_equal(config_tls_version_name(CONFIG_TLS_1_3), "TLSv1.3");
}

/* ------------------------------------------------------------------ */
/* Booleans                                                             */
/* ------------------------------------------------------------------ */

static void
test_every_bool_spelling_in_any_case_is_accepted(void **state)
{
	static const char *const yes[] = {
		"on", "ON", "On", "true", "TRUE", "True", "yes", "YES", "yEs", "1",
	};
	static const char *const no[] = {
		"off", "OFF", "Off", "false", "FALSE", "fAlSe", "no", "NO", "No",
		"0",
	};
	struct config	*cfg = *state;
	char		 line[64], err[ERRLEN];

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		cfg->log_connections = false;
		snprintf(line, sizeof(line), "log_connections = %s\n", yes[i]);
		if (parse(cfg, line, "t.conf", err) != 0)
			fail_msg("\"%s\" rejected: %s", yes[i], err);
		if (!cfg->log_connections)
			fail_msg("\"%s\" did not set true", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		cfg->ssl = true;
		snprintf(line, sizeof(line), "ssl = %s\n", no[i]);
		if (parse(cfg, line, "t.conf", err) != 0)
			fail_msg("\"%s\" rejected: %s", no[i], err);
		if (cfg->ssl)
			fail_msg("\"%s\" did not set false", no[i]);
	}
}

static void
test_bad_bool_error_names_file_line_key_and_allowed_values(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "# tls\nport = 6000\nrequire_ssl = maybe\n",
	    "/etc/pgsslgate/pgsslgate.conf", err), -1);
	assert_err_has(err, "/etc/pgsslgate/pgsslgate.conf:3");
	assert_err_has(err, "\"require_ssl\"");
	assert_err_has(err, "maybe");
	assert_err_has(err, "on, off, true, false, yes, no, 1, 0");
	assert_false(cfg->require_ssl);
}

static void
test_near_miss_bool_spellings_are_rejected(void **state)
{
	static const char *const bad[] = {
		"ssl = 2\n", "ssl = onn\n", "ssl = y\n", "ssl = t\n",
		"ssl = ''\n", "ssl = 'on '\n", "ssl = enable\n",
	};
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_rejected(cfg, bad[i], err);
		assert_err_has(err, "\"ssl\"");
	}
}

/* ------------------------------------------------------------------ */
/* Integers                                                             */
/* ------------------------------------------------------------------ */

static void
test_port_out_of_range_or_not_a_number_is_rejected(void **state)
{
	static const char *const bad[] = {
		"port = 0\n", "port = 65536\n", "port = 12x\n", "port = -1\n",
		"port = ''\n", "port = 99999999999999999999999\n",
		"port = 0x1F90\n", "port = 1.5\n",
	};
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_rejected(cfg, bad[i], err);
		assert_err_has(err, "\"port\"");
		assert_err_has(err, "1 to 65535");
		assert_int_equal(cfg->port, 6432);
	}
}

static void
test_port_range_boundaries_are_accepted(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "port = 1\nbackend_port = 65535\n",
	    "t.conf", err), 0);
	assert_int_equal(cfg->port, 1);
	assert_int_equal(cfg->backend_port, 65535);
}

static void
test_backend_port_and_max_connections_ranges(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_rejected(cfg, "backend_port = 65536\n", err);
	assert_err_has(err, "\"backend_port\"");
	assert_err_has(err, "1 to 65535");

	assert_rejected(cfg, "max_connections = 0\n", err);
	assert_err_has(err, "\"max_connections\"");
	assert_err_has(err, "1 to 1000000");
	assert_rejected(cfg, "max_connections = 1000001\n", err);

	assert_int_equal(parse(cfg, "max_connections = 1000000\n", "t.conf",
	    err), 0);
	assert_int_equal(cfg->max_connections, 1000000);
}

/* ------------------------------------------------------------------ */
/* authentication_timeout                                               */
/* ------------------------------------------------------------------ */

static int
timeout_of(struct config *cfg, const char *value, char *err)
{
	char	line[128];

	snprintf(line, sizeof(line), "authentication_timeout = '%s'\n", value);
	if (parse(cfg, line, "t.conf", err) != 0)
		fail_msg("authentication_timeout '%s' rejected: %s", value, err);
	return cfg->authentication_timeout;
}

/* PostgreSQL's range for authentication_timeout is 1s to 600s. */
static void
test_authentication_timeout_below_one_second_is_rejected(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_rejected(cfg, "authentication_timeout = '500ms'\n", err);
	assert_err_has(err, "t.conf:1");
	assert_err_has(err, "1s to 600s");
	assert_int_equal(cfg->authentication_timeout, 60000);
}

static void
test_authentication_timeout_units_convert_to_milliseconds(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(timeout_of(cfg, "10", err), 10000);	/* default s */
	assert_int_equal(timeout_of(cfg, "10s", err), 10000);
	assert_int_equal(timeout_of(cfg, "2min", err), 120000);
	assert_int_equal(timeout_of(cfg, "1500ms", err), 1500);
	assert_int_equal(timeout_of(cfg, "1s", err), 1000);
	assert_int_equal(timeout_of(cfg, "600s", err), 600000);
	assert_int_equal(timeout_of(cfg, "10min", err), 600000);
}

static void
test_authentication_timeout_out_of_range_or_bad_unit_is_rejected(void **state)
{
	static const char *const bad[] = {
		"authentication_timeout = 0\n",
		"authentication_timeout = 601s\n",
		"authentication_timeout = '5 hours'\n",
		"authentication_timeout = 11min\n",
		"authentication_timeout = 10h\n",
		"authentication_timeout = ms\n",
		"authentication_timeout = -5s\n",
		"authentication_timeout = 99999999999999999999min\n",
	};
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_rejected(cfg, bad[i], err);
		assert_err_has(err, "\"authentication_timeout\"");
		assert_err_has(err, "1s to 600s");
		assert_int_equal(cfg->authentication_timeout, 60000);
	}
}

/* ------------------------------------------------------------------ */
/* TLS versions                                                         */
/* ------------------------------------------------------------------ */

static void
test_ssl_min_protocol_version_below_tls12_is_rejected(void **state)
{
	static const char *const bad[] = {
		"ssl_min_protocol_version = TLSv1\n",
		"ssl_min_protocol_version = TLSv1.1\n",
		"ssl_min_protocol_version = ''\n",
		"ssl_min_protocol_version = SSLv3\n",
	};
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_rejected(cfg, bad[i], err);
		assert_err_has(err, "\"ssl_min_protocol_version\"");
		assert_err_has(err, "TLSv1.2");
		assert_err_has(err, "older versions are not supported");
	}
}

static void
test_ssl_min_protocol_version_tls13_is_accepted(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "ssl_min_protocol_version = 'TLSv1.3'\n",
	    "t.conf", err), 0);
	assert_int_equal(cfg->ssl_min_protocol_version, CONFIG_TLS_1_3);
	assert_int_equal(parse(cfg, "ssl_min_protocol_version = TLSv1.2\n",
	    "t.conf", err), 0);
	assert_int_equal(cfg->ssl_min_protocol_version, CONFIG_TLS_1_2);
}

static void
test_ssl_max_protocol_version_empty_means_no_limit(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "ssl_max_protocol_version = TLSv1.3\n",
	    "t.conf", err), 0);
	assert_int_equal(cfg->ssl_max_protocol_version, CONFIG_TLS_1_3);
	assert_int_equal(parse(cfg, "ssl_max_protocol_version = ''\n",
	    "t.conf", err), 0);
	assert_int_equal(cfg->ssl_max_protocol_version, CONFIG_TLS_ANY);

	assert_rejected(cfg, "ssl_max_protocol_version = TLSv1.1\n", err);
	assert_err_has(err, "\"ssl_max_protocol_version\"");
}

static void
test_validate_rejects_max_below_min(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "ssl_min_protocol_version = TLSv1.3\n"
	    "ssl_max_protocol_version = TLSv1.2\n", "v.conf", err), 0);
	memset(err, 0, sizeof(err));
	assert_int_equal(config_validate(cfg, err, sizeof(err)), -1);
	assert_err_has(err, "ssl_max_protocol_version");
	assert_err_has(err, "ssl_min_protocol_version");
	assert_err_has(err, "TLSv1.2");
	assert_err_has(err, "TLSv1.3");
	assert_err_has(err, "v.conf:2");
}

static void
test_validate_accepts_max_equal_to_min_or_no_limit(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "ssl_min_protocol_version = TLSv1.3\n"
	    "ssl_max_protocol_version = TLSv1.3\n", "v.conf", err), 0);
	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
	assert_int_equal(parse(cfg, "ssl_max_protocol_version = ''\n",
	    "v.conf", err), 0);
	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
}

static void
test_validate_rejects_empty_listen_addresses_and_backend_host(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "listen_addresses = ''\n", "v.conf", err), 0);
	memset(err, 0, sizeof(err));
	assert_int_equal(config_validate(cfg, err, sizeof(err)), -1);
	assert_err_has(err, "listen_addresses");
	assert_err_has(err, "v.conf:1");

	assert_int_equal(parse(cfg, "listen_addresses = '*'\n"
	    "backend_host = ''\n", "v.conf", err), 0);
	memset(err, 0, sizeof(err));
	assert_int_equal(config_validate(cfg, err, sizeof(err)), -1);
	assert_err_has(err, "backend_host");
}

/* ------------------------------------------------------------------ */
/* Unknown keys                                                         */
/* ------------------------------------------------------------------ */

static void
test_unknown_key_is_named_and_closest_key_suggested(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "\n\nsssl = on\n", "u.conf", err), -1);
	assert_err_has(err, "u.conf:3");
	assert_err_has(err, "\"sssl\"");
	assert_err_has(err, "did you mean \"ssl\"");

	assert_rejected(cfg, "prot = 1\n", err);
	assert_err_has(err, "did you mean \"port\"");

	assert_rejected(cfg, "require_sll = on\n", err);
	assert_err_has(err, "did you mean \"require_ssl\"");
}

static void
test_unknown_key_far_from_any_gets_no_suggestion(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_rejected(cfg, "shared_buffers = 128MB\n", err);
	assert_err_has(err, "\"shared_buffers\"");
	if (strstr(err, "did you mean") != NULL)
		fail_msg("suggestion for a far-off key: %s", err);
}

/* ------------------------------------------------------------------ */
/* File syntax                                                          */
/* ------------------------------------------------------------------ */

static void
test_comments_and_blank_lines_are_skipped(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg,
	    "# pgsslgate\n"
	    "\n"
	    "   \t \n"
	    "\t# indented comment = with = equals\n"
	    "port = 7000\n", "c.conf", err), 0);
	assert_int_equal(cfg->port, 7000);
	assert_string_equal(config_origin(cfg, CONFIG_PORT), "c.conf:5");
}

static void
test_name_value_without_equals_sign(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "port 7001\nssl off\n", "c.conf", err), 0);
	assert_int_equal(cfg->port, 7001);
	assert_false(cfg->ssl);
	assert_int_equal(parse(cfg, "  port=7002  \n", "c.conf", err), 0);
	assert_int_equal(cfg->port, 7002);
}

static void
test_quoted_strings_with_escapes_and_hash(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "ssl_ciphers = 'it''s'\n", "q.conf", err), 0);
	assert_string_equal(cfg->ssl_ciphers, "it's");
	assert_int_equal(parse(cfg, "ssl_ciphers = 'it\\'s'\n", "q.conf", err), 0);
	assert_string_equal(cfg->ssl_ciphers, "it's");
	assert_int_equal(parse(cfg, "ssl_ciphers = 'HIGH:#x' # a comment\n",
	    "q.conf", err), 0);
	assert_string_equal(cfg->ssl_ciphers, "HIGH:#x");
	assert_int_equal(parse(cfg, "listen_addresses = 'a, b'\n", "q.conf",
	    err), 0);
	assert_string_equal(cfg->listen_addresses, "a, b");
	assert_int_equal(parse(cfg, "backend_host = ''\n", "q.conf", err), 0);
	assert_string_equal(cfg->backend_host, "");
}

static void
test_trailing_comment_after_value(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "port = 7003 # the port\n", "c.conf", err), 0);
	assert_int_equal(cfg->port, 7003);
	assert_int_equal(parse(cfg, "port = 7004#tight\n", "c.conf", err), 0);
	assert_int_equal(cfg->port, 7004);
	assert_int_equal(parse(cfg, "ssl_ciphers = 'X'# after quote\n",
	    "c.conf", err), 0);
	assert_string_equal(cfg->ssl_ciphers, "X");
}

static void
test_crlf_line_endings_are_accepted(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "# windows\r\nport = 7005\r\n"
	    "ssl_ciphers = 'HIGH'\r\n\r\nssl = off\r\n", "w.conf", err), 0);
	assert_int_equal(cfg->port, 7005);
	assert_string_equal(cfg->ssl_ciphers, "HIGH");
	assert_false(cfg->ssl);
	assert_string_equal(config_origin(cfg, CONFIG_SSL), "w.conf:5");

	/* Line numbers in errors still count CRLF lines. */
	assert_int_equal(parse(cfg, "port = 1\r\nport = x\r\n", "w.conf", err),
	    -1);
	assert_err_has(err, "w.conf:2");
}

static void
test_last_line_without_newline_is_parsed(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "ssl = on\nport = 7006", "c.conf", err), 0);
	assert_int_equal(cfg->port, 7006);
}

static void
test_unterminated_quote_error_names_line(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "port = 7000\nssl_ciphers = 'HIGH\n"
	    "port = 7001'\n", "q.conf", err), -1);
	assert_err_has(err, "q.conf:2");
	assert_err_has(err, "unterminated");
	assert_err_has(err, "ssl_ciphers");
	assert_string_equal(cfg->ssl_ciphers, DEFAULT_CIPHERS);
}

static void
test_trailing_garbage_after_value_is_rejected(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_rejected(cfg, "port = 7000 8000\n", err);
	assert_err_has(err, "\"port\"");
	assert_err_has(err, "8000");
	assert_rejected(cfg, "ssl_ciphers = 'HIGH' MEDIUM\n", err);
	assert_err_has(err, "\"ssl_ciphers\"");
	assert_rejected(cfg, "listen_addresses = a, b\n", err);
	assert_err_has(err, "\"listen_addresses\"");
}

static void
test_missing_value_is_rejected(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_rejected(cfg, "port =\n", err);
	assert_err_has(err, "missing value");
	assert_err_has(err, "\"port\"");
	assert_rejected(cfg, "port\n", err);
	assert_err_has(err, "\"port\"");
	assert_rejected(cfg, "port = # nothing\n", err);
	assert_err_has(err, "\"port\"");
}

static void
test_line_not_starting_with_a_name_is_rejected(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_rejected(cfg, "= 7000\n", err);
	assert_err_has(err, "syntax error");
	assert_rejected(cfg, "7000\n", err);
}

static void
test_later_lines_override_earlier_ones(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "port = 7000\nssl_ciphers = A\n"
	    "port = 7001\nssl_ciphers = B\n", "o.conf", err), 0);
	assert_int_equal(cfg->port, 7001);
	assert_string_equal(cfg->ssl_ciphers, "B");
	assert_string_equal(config_origin(cfg, CONFIG_PORT), "o.conf:3");
	assert_string_equal(config_origin(cfg, CONFIG_SSL_CIPHERS), "o.conf:4");
}

static void
test_error_stops_at_first_bad_line(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "port = nope\nbackend_port = 7777\n",
	    "o.conf", err), -1);
	assert_err_has(err, "o.conf:1");
	assert_int_equal(cfg->backend_port, 5432);
}

/* ------------------------------------------------------------------ */
/* Paths                                                                */
/* ------------------------------------------------------------------ */

static void
test_default_cert_and_key_resolve_against_config_directory(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "port = 7000\n", "/etc/pg/x.conf", err), 0);
	assert_string_equal(cfg->ssl_cert_file, "/etc/pg/server.crt");
	assert_string_equal(cfg->ssl_key_file, "/etc/pg/server.key");
	/* Resolving a default does not make it "set in the file". */
	assert_string_equal(config_origin(cfg, CONFIG_SSL_CERT_FILE), "default");
}

static void
test_relative_cert_set_in_file_resolves_against_config_directory(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "ssl_cert_file = 'tls/proxy.crt'\n"
	    "ssl_key_file = proxy.key\n", "/etc/pg/x.conf", err), 0);
	assert_string_equal(cfg->ssl_cert_file, "/etc/pg/tls/proxy.crt");
	assert_string_equal(cfg->ssl_key_file, "/etc/pg/proxy.key");
	assert_string_equal(config_origin(cfg, CONFIG_SSL_CERT_FILE),
	    "/etc/pg/x.conf:1");
}

static void
test_absolute_cert_path_is_kept(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "ssl_cert_file = '/srv/tls/a.crt'\n",
	    "/etc/pg/x.conf", err), 0);
	assert_string_equal(cfg->ssl_cert_file, "/srv/tls/a.crt");
}

static void
test_config_in_root_directory_resolves_to_root(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	/* "/x.conf" lives in "/": server.crt is "/server.crt", not cwd's. */
	assert_int_equal(parse(cfg, "", "/x.conf", err), 0);
	assert_string_equal(cfg->ssl_cert_file, "/server.crt");
	assert_string_equal(cfg->ssl_key_file, "/server.key");
}

static void
test_config_without_directory_keeps_paths_relative(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "", "x.conf", err), 0);
	assert_string_equal(cfg->ssl_cert_file, "server.crt");
	assert_int_equal(parse(cfg, "", "conf.d/x.conf", err), 0);
	assert_string_equal(cfg->ssl_cert_file, "conf.d/server.crt");
}

static void
test_empty_cert_path_is_rejected(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_rejected(cfg, "ssl_cert_file = ''\n", err);
	assert_err_has(err, "\"ssl_cert_file\"");
}

/* ------------------------------------------------------------------ */
/* -c                                                                   */
/* ------------------------------------------------------------------ */

static void
test_option_name_equals_value_is_applied(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(set_opt(cfg, "port=7000", err), 0);
	assert_int_equal(cfg->port, 7000);
	assert_non_null(strstr(config_origin(cfg, CONFIG_PORT), "-c"));
	assert_non_null(strstr(config_origin(cfg, CONFIG_PORT), "port=7000"));

	assert_int_equal(set_opt(cfg, "port = 7001", err), 0);
	assert_int_equal(cfg->port, 7001);

	assert_int_equal(set_opt(cfg, "require_ssl=on", err), 0);
	assert_true(cfg->require_ssl);
}

static void
test_option_without_equals_or_name_is_rejected(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(set_opt(cfg, "nonsense", err), -1);
	assert_err_has(err, "nonsense");
	assert_err_has(err, "name=value");

	assert_int_equal(set_opt(cfg, "=5", err), -1);
	assert_err_has(err, "name=value");
	assert_int_equal(cfg->port, 6432);
}

static void
test_option_errors_name_the_option_and_key(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(set_opt(cfg, "ssl=maybe", err), -1);
	assert_err_has(err, "-c ssl=maybe");
	assert_err_has(err, "\"ssl\"");
	assert_err_has(err, "on, off, true, false, yes, no, 1, 0");

	assert_int_equal(set_opt(cfg, "sssl=on", err), -1);
	assert_err_has(err, "\"sssl\"");
	assert_err_has(err, "did you mean \"ssl\"");
}

static void
test_option_relative_path_stays_relative_to_working_directory(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(set_opt(cfg, "ssl_cert_file=certs/a.crt", err), 0);
	assert_string_equal(cfg->ssl_cert_file, "certs/a.crt");
}

/* ------------------------------------------------------------------ */
/* Origins                                                              */
/* ------------------------------------------------------------------ */

static void
test_origin_is_file_line_when_set_and_default_otherwise(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "# c\n\nbackend_port = 5433\n",
	    "/etc/pgsslgate.conf", err), 0);
	assert_string_equal(config_origin(cfg, CONFIG_BACKEND_PORT),
	    "/etc/pgsslgate.conf:3");
	assert_string_equal(config_origin(cfg, CONFIG_PORT), "default");
	assert_string_equal(config_origin(cfg, CONFIG_MAX_CONNECTIONS),
	    "default");
}

static void
test_rejected_value_leaves_previous_setting_in_place(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "port = 7000\nssl = off\n"
	    "ssl_min_protocol_version = TLSv1.3\n"
	    "ssl_max_protocol_version = TLSv1.3\n"
	    "authentication_timeout = 30s\n", "r.conf", err), 0);

	assert_rejected(cfg, "port = 0\n", err);
	assert_rejected(cfg, "ssl = maybe\n", err);
	assert_rejected(cfg, "authentication_timeout = 0\n", err);
	assert_rejected(cfg, "ssl_max_protocol_version = TLSv1.1\n", err);
	assert_rejected(cfg, "ssl_min_protocol_version = ''\n", err);

	assert_int_equal(cfg->port, 7000);
	assert_false(cfg->ssl);
	assert_int_equal(cfg->authentication_timeout, 30000);
	assert_int_equal(cfg->ssl_max_protocol_version, CONFIG_TLS_1_3);
	if (cfg->ssl_min_protocol_version != CONFIG_TLS_1_3)
		fail_msg("rejected ssl_min_protocol_version = '' changed the "
		    "setting from TLSv1.3 (13) to %d",
		    cfg->ssl_min_protocol_version);
	/* The rejected lines did not become the origin either. */
	assert_string_equal(config_origin(cfg, CONFIG_PORT), "r.conf:1");
}

/* ------------------------------------------------------------------ */
/* Files                                                                */
/* ------------------------------------------------------------------ */

static void
test_load_missing_file_names_file_and_os_error(void **state)
{
	struct config	*cfg = *state;
	const char	*path = "/nonexistent-pgsslgate-dir/pgsslgate.conf";
	char		 err[ERRLEN] = "";

	assert_int_equal(config_load_file(cfg, path, err, sizeof(err)), -1);
	assert_err_has(err, path);
	assert_err_has(err, strerror(ENOENT));
	assert_null(cfg->config_file);
}

static char *
write_temp_file(const char *text)
{
	char	*path = strdup("/tmp/pgsslgate-test-XXXXXX");
	int	 fd;
	size_t	 len = strlen(text);

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}

static void
test_load_real_file(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN] = "", origin[128];
	char		*path = write_temp_file(
	    "# written by test_config\n"
	    "port = 7100\n"
	    "ssl_cert_file = 'c.crt'\n"
	    "require_ssl = on\n");

	int		 rc = config_load_file(cfg, path, err, sizeof(err));

	unlink(path);
	if (rc != 0)
		fail_msg("%s", err);
	assert_int_equal(cfg->port, 7100);
	assert_true(cfg->require_ssl);
	assert_string_equal(cfg->ssl_cert_file, "/tmp/c.crt");
	assert_string_equal(cfg->ssl_key_file, "/tmp/server.key");
	assert_non_null(cfg->config_file);
	assert_string_equal(cfg->config_file, path);
	snprintf(origin, sizeof(origin), "%s:2", path);
	assert_string_equal(config_origin(cfg, CONFIG_PORT), origin);
	free(path);
}

static void
test_load_file_with_error_reports_line_and_keeps_no_file_name(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN] = "", where[128];
	char		*path = write_temp_file("port = 7100\nport = 7100x\n");

	int		 rc = config_load_file(cfg, path, err, sizeof(err));

	unlink(path);
	assert_int_equal(rc, -1);
	snprintf(where, sizeof(where), "%s:2", path);
	assert_err_has(err, where);
	assert_err_has(err, "\"port\"");
	assert_null(cfg->config_file);
	free(path);
}

static void
test_load_empty_file_keeps_defaults(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN] = "";
	char		*path = write_temp_file("");

	int		 rc = config_load_file(cfg, path, err, sizeof(err));

	unlink(path);
	free(path);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->port, 6432);
	assert_string_equal(cfg->ssl_cert_file, "/tmp/server.crt");
}

static void
test_load_directory_is_not_a_regular_file(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN] = "";

	assert_int_equal(config_load_file(cfg, "/tmp", err, sizeof(err)), -1);
	assert_err_has(err, "/tmp");
	assert_err_has(err, "not a regular file");
}

/* Opening a FIFO for reading waits for a writer, unless it is not done. */
static void
test_load_fifo_is_refused_without_waiting_for_a_writer(void **state)
{
	struct config	*cfg = *state;
	char		 dir[] = "/tmp/test_config.XXXXXX", path[64];
	char		 err[ERRLEN] = "";

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo.conf", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	/* No writer ever comes: a blocking open would hang the test. */
	alarm(10);
	assert_int_equal(config_load_file(cfg, path, err, sizeof(err)), -1);
	alarm(0);
	unlink(path);
	rmdir(dir);
	assert_err_has(err, path);
	assert_err_has(err, "not a regular file");
}

/* A file of n bytes: comment lines of 63 characters and a newline. */
static char *
write_temp_file_of_size(size_t n)
{
	char	*text = malloc(n + 1);
	char	*path;

	assert_non_null(text);
	for (size_t i = 0; i < n; i++)
		text[i] = i % 64 == 0 ? '#' : i % 64 == 63 ? '\n' : 'x';
	text[n] = '\0';
	path = write_temp_file(text);
	free(text);
	return path;
}

static void
test_load_file_of_exactly_1_mib_is_accepted(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN] = "";
	char		*path = write_temp_file_of_size(1u << 20);
	int		 rc = config_load_file(cfg, path, err, sizeof(err));

	unlink(path);
	free(path);
	if (rc != 0)
		fail_msg("a file of exactly 1048576 bytes was rejected: %s", err);
}

static void
test_load_file_over_1_mib_is_rejected(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN] = "";
	char		*path = write_temp_file_of_size((1u << 20) + 64);
	int		 rc = config_load_file(cfg, path, err, sizeof(err));

	unlink(path);
	free(path);
	assert_int_equal(rc, -1);
	assert_err_has(err, "larger than 1 MB");
}

static void
test_nul_byte_and_overlong_line_are_rejected_with_line_number(void **state)
{
	struct config	*cfg = *state;
	static const char text[] = "port = 7000\nssl_ciphers = 'A\0B'\n";
	char		 err[ERRLEN] = "";
	char		*longline = malloc(5000);

	assert_int_equal(config_parse_text(cfg, text, sizeof(text) - 1, "n.conf",
	    err, sizeof(err)), -1);
	assert_err_has(err, "n.conf:2");
	assert_err_has(err, "NUL");
	assert_string_equal(cfg->ssl_ciphers, DEFAULT_CIPHERS);

	assert_non_null(longline);
	memcpy(longline, "# ", 2);
	memset(longline + 2, 'x', 4998);
	longline[4999] = '\0';
	assert_int_equal(parse(cfg, longline, "n.conf", err), -1);
	assert_err_has(err, "n.conf:1");
	assert_err_has(err, "too long");
	free(longline);
}

/* ------------------------------------------------------------------ */
/* Reference counting and small buffers                                 */
/* ------------------------------------------------------------------ */

static void
test_ref_then_two_unrefs_frees_once(void **state)
{
	struct config	*cfg = config_new();
	char		 err[ERRLEN];

	(void)state;
	assert_non_null(cfg);
	/* Own some heap strings, so a leak or double free would show. */
	assert_int_equal(parse(cfg, "ssl_ciphers = X\nport = 7000\n",
	    "/etc/r.conf", err), 0);
	assert_ptr_equal(config_ref(cfg), cfg);
	assert_int_equal(cfg->refcount, 2);
	config_unref(cfg);
	/* Still alive: readable under ASan. */
	assert_int_equal(cfg->refcount, 1);
	assert_string_equal(cfg->ssl_ciphers, "X");
	config_unref(cfg);
	config_unref(NULL);
}

static void
test_error_buffer_is_never_overrun(void **state)
{
	struct config	*cfg = *state;
	char		 small[16];

	memset(small, 'Z', sizeof(small));
	assert_int_equal(config_set_option(cfg, "ssl=definitely-not-a-bool",
	    small, 8), -1);
	assert_int_equal(strnlen(small, 8), 7);
	for (size_t i = 8; i < sizeof(small); i++)
		assert_int_equal(small[i], 'Z');
	/* errlen 0: nothing written at all. */
	memset(small, 'Z', sizeof(small));
	assert_int_equal(config_set_option(cfg, "port=0", small, 0), -1);
	assert_int_equal(small[0], 'Z');
}

/* ------------------------------------------------------------------ */
/* Client certificates                                                  */
/* ------------------------------------------------------------------ */

static void
test_client_certificate_keys_default_to_off_and_empty(void **state)
{
	struct config	*cfg = *state;

	assert_int_equal(cfg->clientcert, CONFIG_CLIENTCERT_OFF);
	assert_string_equal(cfg->ssl_ca_file, "");
	assert_string_equal(cfg->ssl_crl_file, "");
	assert_string_equal(cfg->ssl_crl_dir, "");
}

static void
test_clientcert_takes_pg_hba_names_only(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "clientcert = verify-ca\n", "t.conf",
	    err), 0);
	assert_int_equal(cfg->clientcert, CONFIG_CLIENTCERT_VERIFY_CA);
	assert_int_equal(parse(cfg, "clientcert = 'verify-full'\n", "t.conf",
	    err), 0);
	assert_int_equal(cfg->clientcert, CONFIG_CLIENTCERT_VERIFY_FULL);
	assert_rejected(cfg, "clientcert = 1\n", err);
	assert_err_has(err, "\"clientcert\"");
	assert_err_has(err, "off, verify-ca, verify-full");
	assert_int_equal(cfg->clientcert, CONFIG_CLIENTCERT_VERIFY_FULL);
	assert_string_equal(config_clientcert_name(cfg->clientcert),
	    "verify-full");
}

static void
test_clientcert_without_ssl_ca_file_is_a_config_error(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "clientcert = verify-ca\n", "t.conf", err),
	    0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), -1);
	assert_err_has(err, "t.conf:1");
	assert_err_has(err, "clientcert = verify-ca needs ssl_ca_file");
}

static void
test_clientcert_with_ssl_off_is_a_config_error(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "ssl = off\nclientcert = verify-full\n"
	    "ssl_ca_file = ca.crt\n", "t.conf", err), 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), -1);
	assert_err_has(err, "t.conf:2");
	assert_err_has(err, "needs ssl = on");
}

static void
test_crl_without_ssl_ca_file_is_a_config_error(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "ssl_crl_dir = crls\n", "/etc/g/t.conf",
	    err), 0);
	assert_string_equal(cfg->ssl_crl_dir, "/etc/g/crls");
	assert_int_equal(config_validate(cfg, err, ERRLEN), -1);
	assert_err_has(err, "/etc/g/t.conf:1");
	assert_err_has(err, "ssl_crl_dir is set but ssl_ca_file is not");
	/* '' switches an optional file off again and stays empty. */
	assert_int_equal(parse(cfg, "ssl_crl_dir = ''\n", "/etc/g/t.conf", err),
	    0);
	assert_string_equal(cfg->ssl_crl_dir, "");
	assert_int_equal(config_validate(cfg, err, ERRLEN), 0);
}

/* ------------------------------------------------------------------ */
/* Live operations                                                      */
/* ------------------------------------------------------------------ */

static void
test_operations_keys_have_documented_defaults(void **state)
{
	struct config	*cfg = *state;

	assert_int_equal(cfg->shutdown_timeout, 30);
	assert_int_equal(cfg->backend_connect_timeout, 10000);
	assert_int_equal(cfg->tcp_keepalives_idle, 0);
	assert_int_equal(cfg->tcp_keepalives_interval, 0);
	assert_int_equal(cfg->tcp_keepalives_count, 0);
	assert_int_equal(cfg->ssl_cert_expiry_warning, 30 * 86400);
	assert_int_equal(cfg->log_destination, CONFIG_LOG_STDERR);
	assert_string_equal(cfg->metrics_listen, "");
}

static void
test_times_in_seconds_take_units_up_to_days(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "ssl_cert_expiry_warning = 14d\n"
	    "shutdown_timeout = 2min\ntcp_keepalives_idle = 1h\n"
	    "tcp_keepalives_interval = 15\n", "t.conf", err), 0);
	assert_int_equal(cfg->ssl_cert_expiry_warning, 14 * 86400);
	assert_int_equal(cfg->shutdown_timeout, 120);
	assert_int_equal(cfg->tcp_keepalives_idle, 3600);
	assert_int_equal(cfg->tcp_keepalives_interval, 15);
	assert_int_equal(parse(cfg, "shutdown_timeout = 0\n", "t.conf", err),
	    0);
	assert_int_equal(cfg->shutdown_timeout, 0);
}

static void
test_seconds_setting_refuses_a_fraction_of_a_second(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_rejected(cfg, "shutdown_timeout = 1500ms\n", err);
	assert_err_has(err, "\"shutdown_timeout\"");
	assert_rejected(cfg, "ssl_cert_expiry_warning = 3651d\n", err);
	assert_err_has(err, "3650d");
	assert_rejected(cfg, "tcp_keepalives_count = 128\n", err);
	assert_err_has(err, "127");
}

static void
test_backend_connect_timeout_takes_milliseconds(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "backend_connect_timeout = 250ms\n",
	    "t.conf", err), 0);
	assert_int_equal(cfg->backend_connect_timeout, 250);
	assert_rejected(cfg, "backend_connect_timeout = 50ms\n", err);
	assert_err_has(err, "100ms to 600s");
}

static void
test_log_destination_is_stderr_or_syslog(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "log_destination = syslog\n", "t.conf",
	    err), 0);
	assert_int_equal(cfg->log_destination, CONFIG_LOG_SYSLOG);
	assert_rejected(cfg, "log_destination = csvlog\n", err);
	assert_err_has(err, "stderr, syslog");
	assert_int_equal(cfg->log_destination, CONFIG_LOG_SYSLOG);
}

static void
test_metrics_listen_must_be_host_and_port(void **state)
{
	static const char *const bad[] = {
		"metrics_listen = localhost\n",
		"metrics_listen = ':9187'\n",
		"metrics_listen = 'localhost:'\n",
		"metrics_listen = 'localhost:0'\n",
		"metrics_listen = 'localhost:65536'\n",
		"metrics_listen = '[::1:9187'\n",
	};
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(cfg, bad[i], "t.conf", err), 0);
		if (config_validate(cfg, err, ERRLEN) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_err_has(err, "t.conf:1");
		assert_err_has(err, "host:port");
	}
	assert_int_equal(parse(cfg, "metrics_listen = '[::1]:9187'\n",
	    "t.conf", err), 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), 0);
}

static void
test_split_hostport_handles_ipv4_names_and_bracketed_ipv6(void **state)
{
	char	host[64];
	int	port;

	(void)state;
	assert_int_equal(config_split_hostport("127.0.0.1:9187", host,
	    sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9187);
	assert_int_equal(config_split_hostport("[::1]:1", host, sizeof(host),
	    &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 1);
	assert_int_equal(config_split_hostport("metrics.example:80x", host,
	    sizeof(host), &port), -1);
	assert_int_equal(config_split_hostport("averyveryverylonghostname"
	    "thatdoesnotfitintosixtyfourbyteswhatsoeverreally.example:80",
	    host, sizeof(host), &port), -1);
}

static void
test_parameter_names_are_case_insensitive_as_in_postgresql(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "Require_SSL = on\nPORT = 7001\n",
	    "t.conf", err), 0);
	assert_true(cfg->require_ssl);
	assert_int_equal(cfg->port, 7001);
	assert_int_equal(set_opt(cfg, "SSL=off", err), 0);
	assert_false(cfg->ssl);
}

/* ------------------------------------------------------------------ */
/* Backend TLS and direct SSL                                            */
/* ------------------------------------------------------------------ */

static void
test_backend_tls_keys_default_to_plaintext_with_sni(void **state)
{
	struct config	*cfg = *state;

	assert_int_equal(cfg->backend_sslmode, CONFIG_SSLMODE_DISABLE);
	assert_string_equal(cfg->backend_sslrootcert, "");
	assert_string_equal(cfg->backend_sslcert, "");
	assert_string_equal(cfg->backend_sslkey, "");
	assert_true(cfg->backend_sslsni);
	assert_int_equal(cfg->backend_ssl_min_protocol_version,
	    CONFIG_TLS_1_2);
	assert_true(cfg->ssl_direct);
}

static void
test_session_tickets_off_by_default_and_boolean(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_false(cfg->ssl_session_tickets);
	assert_int_equal(parse(cfg, "ssl_session_tickets = on\n", "t.conf",
	    err), 0);
	assert_true(cfg->ssl_session_tickets);
	assert_rejected(cfg, "ssl_session_tickets = 2\n", err);
	assert_err_has(err, "ssl_session_tickets");
}

static void
test_backend_sslmode_takes_libpq_names(void **state)
{
	static const char *const names[] = { "disable", "allow", "prefer",
	    "require", "verify-ca", "verify-full" };
	struct config	*cfg = *state;
	char		 line[64], err[ERRLEN];

	for (int i = 0; i < 6; i++) {
		snprintf(line, sizeof(line), "backend_sslmode = %s\n", names[i]);
		assert_int_equal(parse(cfg, line, "t.conf", err), 0);
		assert_int_equal(cfg->backend_sslmode, i);
		assert_string_equal(config_sslmode_name(i), names[i]);
	}
	assert_rejected(cfg, "backend_sslmode = on\n", err);
	assert_err_has(err, "disable, allow, prefer, require, verify-ca, "
	    "verify-full");
}

static void
test_backend_verify_modes_need_a_root_certificate(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "backend_sslmode = verify-full\n",
	    "t.conf", err), 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), -1);
	assert_err_has(err, "t.conf:1");
	assert_err_has(err, "needs backend_sslrootcert");
	assert_int_equal(parse(cfg, "backend_sslrootcert = ca.crt\n",
	    "/etc/g/t.conf", err), 0);
	assert_string_equal(cfg->backend_sslrootcert, "/etc/g/ca.crt");
	assert_int_equal(config_validate(cfg, err, ERRLEN), 0);
}

static void
test_backend_client_certificate_needs_its_key(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "backend_sslcert = proxy.crt\n",
	    "t.conf", err), 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), -1);
	assert_err_has(err, "backend_sslcert and backend_sslkey go together");
	assert_int_equal(parse(cfg, "backend_sslkey = proxy.key\n",
	    "t.conf", err), 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), 0);
}

static void
test_backend_tls_over_unix_socket_is_refused(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "backend_host = /var/run/postgresql\n"
	    "backend_sslmode = require\n", "t.conf", err), 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), -1);
	assert_err_has(err, "t.conf:2");
	assert_err_has(err, "Unix-domain socket");
	assert_int_equal(parse(cfg, "backend_sslmode = prefer\n", "t.conf",
	    err), 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), 0);
}

static void
test_backend_min_protocol_refuses_no_limit(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_rejected(cfg, "backend_ssl_min_protocol_version = ''\n", err);
	assert_err_has(err, "older versions are not supported");
	assert_int_equal(parse(cfg, "backend_ssl_min_protocol_version = "
	    "TLSv1.3\n", "t.conf", err), 0);
	assert_int_equal(cfg->backend_ssl_min_protocol_version,
	    CONFIG_TLS_1_3);
}

/* ------------------------------------------------------------------ */
/* Limits: half_close_timeout, max_startup_connections(_per_host)       */
/* ------------------------------------------------------------------ */

static void
test_half_close_timeout_default_units_and_zero(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(cfg->half_close_timeout, 600000);
	assert_int_equal(parse(cfg, "half_close_timeout = 0\n", "t.conf",
	    err), 0);
	assert_int_equal(cfg->half_close_timeout, 0);
	assert_int_equal(parse(cfg, "half_close_timeout = 90s\n", "t.conf",
	    err), 0);
	assert_int_equal(cfg->half_close_timeout, 90000);
	assert_rejected(cfg, "half_close_timeout = 2d\n", err);
	assert_err_has(err, "half_close_timeout");
	assert_rejected(cfg, "half_close_timeout = -1\n", err);
}

/* ------------------------------------------------------------------ */
/* Live operations: file_check_interval, shutdown_delay                 */
/* ------------------------------------------------------------------ */

static void
test_file_check_interval_default_zero_and_range(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(cfg->file_check_interval, 5);
	assert_int_equal(parse(cfg, "file_check_interval = 0\n", "t.conf",
	    err), 0);
	assert_int_equal(cfg->file_check_interval, 0);
	assert_int_equal(parse(cfg, "file_check_interval = 1min\n", "t.conf",
	    err), 0);
	assert_int_equal(cfg->file_check_interval, 60);
	assert_rejected(cfg, "file_check_interval = 2h\n", err);
	assert_err_has(err, "file_check_interval");
	assert_rejected(cfg, "file_check_interval = 500ms\n", err);
	assert_rejected(cfg, "file_check_interval = -1\n", err);
}

static void
test_shutdown_delay_default_zero_and_range(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(cfg->shutdown_delay, 0);
	assert_int_equal(set_opt(cfg, "shutdown_delay=5s", err), 0);
	assert_int_equal(cfg->shutdown_delay, 5);
	assert_int_equal(parse(cfg, "shutdown_delay = 1h\n", "t.conf", err), 0);
	assert_int_equal(cfg->shutdown_delay, 3600);
	assert_rejected(cfg, "shutdown_delay = 3601\n", err);
	assert_err_has(err, "shutdown_delay");
	assert_rejected(cfg, "shutdown_delay = 1500ms\n", err);
}

static void
test_startup_caps_derive_from_max_connections(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(cfg->max_startup_connections, 0);
	assert_int_equal(cfg->max_startup_connections_per_host, 0);
	assert_int_equal(config_startup_cap(cfg), 1000);
	assert_int_equal(config_startup_cap_per_host(cfg), 500);
	assert_int_equal(set_opt(cfg, "max_connections=1", err), 0);
	assert_int_equal(config_startup_cap(cfg), 1);
	assert_int_equal(config_startup_cap_per_host(cfg), 1);
	assert_int_equal(set_opt(cfg, "max_startup_connections=40", err), 0);
	assert_int_equal(config_startup_cap(cfg), 40);
	assert_int_equal(config_startup_cap_per_host(cfg), 20);
	assert_int_equal(set_opt(cfg, "max_startup_connections_per_host=3",
	    err), 0);
	assert_int_equal(config_startup_cap_per_host(cfg), 3);
	assert_rejected(cfg, "max_startup_connections = -1\n", err);
	assert_rejected(cfg, "max_startup_connections_per_host = lots\n", err);
	assert_err_has(err, "max_startup_connections_per_host");
}

/* ------------------------------------------------------------------ */
/* Fingerprints and the key settings                                    */
/* ------------------------------------------------------------------ */

/* SHA-256 of the DER of a certificate, as openssl printed it. */
#define FP_COLON "47:97:4E:FA:FF:64:BF:5F:86:47:33:5E:0D:A1:3C:59:" \
	"B0:36:19:5A:39:38:0A:98:EC:D0:67:1D:45:34:CE:95"
#define FP_PLAIN "47974efaff64bf5f8647335e0da13c59" \
	"b036195a39380a98ecd0671d4534ce95"
#define FP_OTHER "00112233445566778899AABBCCDDEEFF" \
	"00112233445566778899AABBCCDDEEFF"

static const unsigned char fp_bytes[FINGERPRINT_LEN] = {
	0x47, 0x97, 0x4e, 0xfa, 0xff, 0x64, 0xbf, 0x5f, 0x86, 0x47, 0x33,
	0x5e, 0x0d, 0xa1, 0x3c, 0x59, 0xb0, 0x36, 0x19, 0x5a, 0x39, 0x38,
	0x0a, 0x98, 0xec, 0xd0, 0x67, 0x1d, 0x45, 0x34, 0xce, 0x95,
};

static void
test_fingerprint_colon_pairs_and_plain_hex_give_the_same_digest(void **state)
{
	unsigned char	a[FINGERPRINT_LEN], b[FINGERPRINT_LEN];

	(void)state;
	assert_int_equal(fingerprint_parse(FP_COLON, strlen(FP_COLON), a), 0);
	assert_int_equal(fingerprint_parse(FP_PLAIN, strlen(FP_PLAIN), b), 0);
	assert_memory_equal(a, fp_bytes, FINGERPRINT_LEN);
	assert_memory_equal(b, fp_bytes, FINGERPRINT_LEN);
}

static void
test_fingerprint_openssl_output_pastes_in_either_case(void **state)
{
	const char	*upper = "SHA256 Fingerprint=" FP_COLON;
	const char	*lower = "  sha256 Fingerprint=" FP_COLON "\n";
	unsigned char	 out[FINGERPRINT_LEN];

	(void)state;
	assert_int_equal(fingerprint_parse(upper, strlen(upper), out), 0);
	assert_memory_equal(out, fp_bytes, FINGERPRINT_LEN);
	memset(out, 0, sizeof(out));
	assert_int_equal(fingerprint_parse(lower, strlen(lower), out), 0);
	assert_memory_equal(out, fp_bytes, FINGERPRINT_LEN);
}

static void
test_fingerprint_malformed_forms_are_rejected(void **state)
{
	static const char *const bad[] = {
		"",
		FP_PLAIN "0",				/* 65 digits */
		"47974efaff64bf5f8647335e0da13c59b036195a39380a98ecd0671d4534ce9",
		"g7974efaff64bf5f8647335e0da13c59b036195a39380a98ecd0671d4534ce95",
		/* a colon moved by one place */
		"479:74E:FA:FF:64:BF:5F:86:47:33:5E:0D:A1:3C:59:B0:36:19:5A:39:"
		    "38:0A:98:EC:D0:67:1D:45:34:CE:95",
		/* dashes instead of colons */
		"47-97-4E-FA-FF-64-BF-5F-86-47-33-5E-0D-A1-3C-59-B0-36-19-5A-39-"
		    "38-0A-98-EC-D0-67-1D-45-34-CE-95",
		/* SHA-1 length */
		"A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:01:12:23:34",
		"SHA256 Fingerprint=",
		"4797 4efaff64bf5f8647335e0da13c59b036195a39380a98ecd0671d4534ce9",
	};
	unsigned char	out[FINGERPRINT_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fingerprint_parse(bad[i], strlen(bad[i]), out) != -1)
			fail_msg("accepted: \"%s\"", bad[i]);
}

static void
test_fingerprint_format_is_openssls_colon_hex_and_round_trips(void **state)
{
	char		text[FINGERPRINT_TEXT_LEN], small[40];
	unsigned char	back[FINGERPRINT_LEN];

	(void)state;
	fingerprint_format(fp_bytes, text, sizeof(text));
	assert_string_equal(text, FP_COLON);
	assert_int_equal(strlen(text), FINGERPRINT_TEXT_LEN - 1);
	assert_int_equal(fingerprint_parse(text, strlen(text), back), 0);
	assert_memory_equal(back, fp_bytes, FINGERPRINT_LEN);
	/* Too small a buffer: nothing rather than half a fingerprint. */
	memset(small, 'x', sizeof(small));
	fingerprint_format(fp_bytes, small, sizeof(small));
	assert_string_equal(small, "");
}

static void
test_fingerprint_list_takes_commas_blanks_and_a_limit(void **state)
{
	unsigned char	out[FINGERPRINT_MAX][FINGERPRINT_LEN];
	char		list[2048] = "", why[160];
	size_t		n = 99;

	(void)state;
	assert_int_equal(fingerprint_parse_list("", out, FINGERPRINT_MAX, &n,
	    why, sizeof(why)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(fingerprint_parse_list(FP_COLON " , " FP_OTHER, out,
	    FINGERPRINT_MAX, &n, why, sizeof(why)), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(out[0], fp_bytes, FINGERPRINT_LEN);
	assert_int_equal(out[1][0], 0x00);
	assert_int_equal(out[1][31], 0xff);
	assert_int_equal(fingerprint_parse_list(FP_COLON ",", out,
	    FINGERPRINT_MAX, &n, why, sizeof(why)), -1);
	assert_err_has(why, "item 2");
	for (int i = 0; i <= FINGERPRINT_MAX; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
		    "%s%s", i ? "," : "", FP_PLAIN);
	assert_int_equal(fingerprint_parse_list(list, out, FINGERPRINT_MAX, &n,
	    why, sizeof(why)), -1);
	assert_err_has(why, "more than 8");
}

static void
test_backend_sslcertfingerprint_is_parsed_into_pins(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(cfg->backend_npins, 0);
	assert_string_equal(cfg->backend_sslcertfingerprint, "");
	assert_int_equal(set_opt(cfg, "backend_sslcertfingerprint=" FP_PLAIN
	    "," FP_OTHER, err), 0);
	assert_int_equal(cfg->backend_npins, 2);
	assert_memory_equal(cfg->backend_pins[0], fp_bytes, FINGERPRINT_LEN);
	/* Setting it again replaces the list. */
	assert_int_equal(set_opt(cfg, "backend_sslcertfingerprint=" FP_OTHER,
	    err), 0);
	assert_int_equal(cfg->backend_npins, 1);
	assert_int_equal(cfg->backend_pins[0][1], 0x11);
}

static void
test_bad_backend_sslcertfingerprint_is_named_and_keeps_the_old(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(set_opt(cfg, "backend_sslcertfingerprint=" FP_COLON,
	    err), 0);
	assert_rejected(cfg, "backend_sslcertfingerprint = '" FP_COLON
	    ",AB:CD'", err);
	assert_err_has(err, "\"backend_sslcertfingerprint\"");
	assert_err_has(err, "item 2");
	assert_int_equal(cfg->backend_npins, 1);
	assert_memory_equal(cfg->backend_pins[0], fp_bytes, FINGERPRINT_LEN);
}

static void
test_pin_needs_backend_sslmode_require_or_above(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(set_opt(cfg, "backend_sslcertfingerprint=" FP_PLAIN,
	    err), 0);
	for (int mode = CONFIG_SSLMODE_DISABLE; mode <= CONFIG_SSLMODE_PREFER;
	    mode++) {
		char	opt[64];

		snprintf(opt, sizeof(opt), "backend_sslmode=%s",
		    config_sslmode_name(mode));
		assert_int_equal(set_opt(cfg, opt, err), 0);
		assert_int_equal(config_validate(cfg, err, ERRLEN), -1);
		assert_err_has(err, "backend_sslcertfingerprint needs "
		    "backend_sslmode = require");
	}
	assert_int_equal(set_opt(cfg, "backend_sslmode=require", err), 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), 0);
}

static void
test_passphrase_and_password_settings(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_string_equal(cfg->ssl_passphrase_command, "");
	assert_false(cfg->ssl_passphrase_command_supports_reload);
	assert_string_equal(cfg->backend_sslpassword, "");
	assert_int_equal(parse(cfg, "ssl_passphrase_command = "
	    "'/usr/bin/pass show db \"%p\"'\n"
	    "ssl_passphrase_command_supports_reload = on\n"
	    "backend_sslpassword = 'it''s secret'\n", "t.conf", err), 0);
	assert_string_equal(cfg->ssl_passphrase_command,
	    "/usr/bin/pass show db \"%p\"");
	assert_true(cfg->ssl_passphrase_command_supports_reload);
	assert_string_equal(cfg->backend_sslpassword, "it's secret");
	assert_rejected(cfg, "ssl_passphrase_command_supports_reload = maybe",
	    err);
}

/* ------------------------------------------------------------------ */
/* proxy_protocol, proxy_protocol_networks                              */
/* ------------------------------------------------------------------ */

static struct sockaddr_storage
addr_of(const char *text)
{
	struct sockaddr_storage	ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr))
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, text,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr))
		ss.ss_family = AF_INET6;
	else
		fail_msg("bad test address %s", text);
	return ss;
}

static bool
in_networks(const struct config *cfg, const char *text)
{
	struct sockaddr_storage	ss = addr_of(text);

	return config_network_match(cfg->proxy_networks, cfg->nproxy_networks,
	    (const struct sockaddr *)&ss);
}

static void
test_proxy_protocol_is_off_with_no_networks_by_default(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_false(cfg->proxy_protocol);
	assert_string_equal(cfg->proxy_protocol_networks, "");
	assert_int_equal(cfg->nproxy_networks, 0);
	assert_false(in_networks(cfg, "127.0.0.1"));
	assert_int_equal(config_validate(cfg, err, ERRLEN), 0);
}

static void
test_proxy_protocol_networks_parse_ipv4_ipv6_and_bare_addresses(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(parse(cfg, "proxy_protocol = on\n"
	    "proxy_protocol_networks = '10.0.0.0/8, 192.0.2.7 2001:db8::/32,"
	    "::1,0.0.0.0/0'\n", "t.conf", err), 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), 0);
	assert_true(cfg->proxy_protocol);
	assert_int_equal(cfg->nproxy_networks, 5);
	assert_int_equal(cfg->proxy_networks[0].family, AF_INET);
	assert_int_equal(cfg->proxy_networks[0].bits, 8);
	assert_int_equal(cfg->proxy_networks[1].bits, 32);
	assert_int_equal(cfg->proxy_networks[2].family, AF_INET6);
	assert_int_equal(cfg->proxy_networks[2].bits, 32);
	assert_int_equal(cfg->proxy_networks[3].bits, 128);
	assert_int_equal(cfg->proxy_networks[4].bits, 0);
	assert_string_equal(cfg->proxy_protocol_networks, "10.0.0.0/8, "
	    "192.0.2.7 2001:db8::/32,::1,0.0.0.0/0");
}

static void
test_proxy_protocol_networks_match_by_prefix(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(set_opt(cfg, "proxy_protocol_networks=10.1.0.0/16,"
	    "192.0.2.7,172.16.0.0/12,2001:db8:40::/42", err), 0);
	assert_true(in_networks(cfg, "10.1.255.3"));
	assert_false(in_networks(cfg, "10.2.0.1"));
	assert_true(in_networks(cfg, "192.0.2.7"));
	assert_false(in_networks(cfg, "192.0.2.8"));
	/* /12: 172.16.0.0 - 172.31.255.255, a prefix not on a byte. */
	assert_true(in_networks(cfg, "172.31.255.255"));
	assert_false(in_networks(cfg, "172.32.0.0"));
	assert_false(in_networks(cfg, "172.15.255.255"));
	/* /42: 2001:db8:40:: to 2001:db8:7f:ffff:... */
	assert_true(in_networks(cfg, "2001:db8:7f:ffff::1"));
	assert_false(in_networks(cfg, "2001:db8:80::1"));
	/* IPv4-mapped IPv6 is the IPv4 address; an IPv4 net is not IPv6. */
	assert_true(in_networks(cfg, "::ffff:10.1.2.3"));
	assert_false(in_networks(cfg, "::a01:203"));
}

static void
test_proxy_protocol_networks_zero_prefix_matches_its_family_only(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(set_opt(cfg, "proxy_protocol_networks=0.0.0.0/0",
	    err), 0);
	assert_true(in_networks(cfg, "203.0.113.9"));
	assert_false(in_networks(cfg, "2001:db8::1"));
}

static void
test_proxy_protocol_networks_refuse_bad_entries(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN], line[2048];
	size_t		 n;

	assert_rejected(cfg, "proxy_protocol_networks = 'lb.example.com'", err);
	assert_err_has(err, "host names are not allowed");
	assert_err_has(err, "t.conf:1");
	assert_rejected(cfg, "proxy_protocol_networks = '10.0.0.0/33'", err);
	assert_err_has(err, "invalid prefix length (0 to 32)");
	assert_rejected(cfg, "proxy_protocol_networks = '::/129'", err);
	assert_err_has(err, "0 to 128");
	assert_rejected(cfg, "proxy_protocol_networks = '10.0.0.0/'", err);
	assert_rejected(cfg, "proxy_protocol_networks = '10.0.0.0/-1'", err);
	assert_rejected(cfg, "proxy_protocol_networks = '10.0.0.0/8x'", err);
	assert_rejected(cfg, "proxy_protocol_networks = '10.0.0.1/8'", err);
	assert_err_has(err, "bits set beyond its /8 prefix");
	assert_rejected(cfg, "proxy_protocol_networks = '2001:db8::1/64'", err);
	assert_err_has(err, "bits set beyond");
	assert_rejected(cfg, "proxy_protocol_networks = '10.0.0.0/8, 1.2.3'",
	    err);
	/* A bad value leaves the previous one in force. */
	assert_int_equal(cfg->nproxy_networks, 0);
	n = (size_t)snprintf(line, sizeof(line), "proxy_protocol_networks = '");
	for (int i = 0; i <= CONFIG_MAX_NETWORKS; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "10.0.%d.0/24,",
		    i);
	snprintf(line + n, sizeof(line) - n, "'");
	assert_rejected(cfg, line, err);
	assert_err_has(err, "more than 64 networks");
}

static void
test_proxy_protocol_on_needs_networks(void **state)
{
	struct config	*cfg = *state;
	char		 err[ERRLEN];

	assert_int_equal(set_opt(cfg, "proxy_protocol=on", err), 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), -1);
	assert_err_has(err, "proxy_protocol = on needs proxy_protocol_networks");
	assert_int_equal(set_opt(cfg, "proxy_protocol_networks=10.0.0.0/8",
	    err), 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), 0);
	/* An empty list again: refused again. */
	assert_int_equal(set_opt(cfg, "proxy_protocol_networks=", err), 0);
	assert_int_equal(cfg->nproxy_networks, 0);
	assert_int_equal(config_validate(cfg, err, ERRLEN), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_half_close_timeout_default_units_and_zero),
		TEST(test_startup_caps_derive_from_max_connections),
		TEST(test_file_check_interval_default_zero_and_range),
		TEST(test_shutdown_delay_default_zero_and_range),
		TEST(test_defaults_match_documentation),
		TEST(test_defaults_have_origin_default_and_validate),
		TEST(test_key_names_are_the_config_file_spellings),
		TEST(test_every_bool_spelling_in_any_case_is_accepted),
		TEST(test_bad_bool_error_names_file_line_key_and_allowed_values),
		TEST(test_near_miss_bool_spellings_are_rejected),
		TEST(test_port_out_of_range_or_not_a_number_is_rejected),
		TEST(test_port_range_boundaries_are_accepted),
		TEST(test_backend_port_and_max_connections_ranges),
		TEST(test_authentication_timeout_below_one_second_is_rejected),
		TEST(test_authentication_timeout_units_convert_to_milliseconds),
		TEST(test_authentication_timeout_out_of_range_or_bad_unit_is_rejected),
		TEST(test_ssl_min_protocol_version_below_tls12_is_rejected),
		TEST(test_ssl_min_protocol_version_tls13_is_accepted),
		TEST(test_ssl_max_protocol_version_empty_means_no_limit),
		TEST(test_validate_rejects_max_below_min),
		TEST(test_validate_accepts_max_equal_to_min_or_no_limit),
		TEST(test_validate_rejects_empty_listen_addresses_and_backend_host),
		TEST(test_unknown_key_is_named_and_closest_key_suggested),
		TEST(test_unknown_key_far_from_any_gets_no_suggestion),
		TEST(test_comments_and_blank_lines_are_skipped),
		TEST(test_name_value_without_equals_sign),
		TEST(test_quoted_strings_with_escapes_and_hash),
		TEST(test_trailing_comment_after_value),
		TEST(test_crlf_line_endings_are_accepted),
		TEST(test_last_line_without_newline_is_parsed),
		TEST(test_unterminated_quote_error_names_line),
		TEST(test_trailing_garbage_after_value_is_rejected),
		TEST(test_missing_value_is_rejected),
		TEST(test_line_not_starting_with_a_name_is_rejected),
		TEST(test_later_lines_override_earlier_ones),
		TEST(test_error_stops_at_first_bad_line),
		TEST(test_default_cert_and_key_resolve_against_config_directory),
		TEST(test_relative_cert_set_in_file_resolves_against_config_directory),
		TEST(test_absolute_cert_path_is_kept),
		TEST(test_config_in_root_directory_resolves_to_root),
		TEST(test_config_without_directory_keeps_paths_relative),
		TEST(test_empty_cert_path_is_rejected),
		TEST(test_option_name_equals_value_is_applied),
		TEST(test_option_without_equals_or_name_is_rejected),
		TEST(test_option_errors_name_the_option_and_key),
		TEST(test_option_relative_path_stays_relative_to_working_directory),
		TEST(test_origin_is_file_line_when_set_and_default_otherwise),
		TEST(test_rejected_value_leaves_previous_setting_in_place),
		TEST(test_load_missing_file_names_file_and_os_error),
		TEST(test_load_real_file),
		TEST(test_load_file_with_error_reports_line_and_keeps_no_file_name),
		TEST(test_load_empty_file_keeps_defaults),
		TEST(test_load_directory_is_not_a_regular_file),
		TEST(test_load_fifo_is_refused_without_waiting_for_a_writer),
		TEST(test_load_file_of_exactly_1_mib_is_accepted),
		TEST(test_load_file_over_1_mib_is_rejected),
		TEST(test_nul_byte_and_overlong_line_are_rejected_with_line_number),
		TEST(test_ref_then_two_unrefs_frees_once),
		TEST(test_error_buffer_is_never_overrun),
		TEST(test_client_certificate_keys_default_to_off_and_empty),
		TEST(test_clientcert_takes_pg_hba_names_only),
		TEST(test_clientcert_without_ssl_ca_file_is_a_config_error),
		TEST(test_clientcert_with_ssl_off_is_a_config_error),
		TEST(test_crl_without_ssl_ca_file_is_a_config_error),
		TEST(test_parameter_names_are_case_insensitive_as_in_postgresql),
		TEST(test_backend_tls_keys_default_to_plaintext_with_sni),
		TEST(test_session_tickets_off_by_default_and_boolean),
		TEST(test_backend_sslmode_takes_libpq_names),
		TEST(test_backend_verify_modes_need_a_root_certificate),
		TEST(test_backend_client_certificate_needs_its_key),
		TEST(test_backend_tls_over_unix_socket_is_refused),
		TEST(test_backend_min_protocol_refuses_no_limit),
		TEST(test_operations_keys_have_documented_defaults),
		TEST(test_times_in_seconds_take_units_up_to_days),
		TEST(test_seconds_setting_refuses_a_fraction_of_a_second),
		TEST(test_backend_connect_timeout_takes_milliseconds),
		TEST(test_log_destination_is_stderr_or_syslog),
		TEST(test_metrics_listen_must_be_host_and_port),
		TEST(test_split_hostport_handles_ipv4_names_and_bracketed_ipv6),
		TEST(test_fingerprint_colon_pairs_and_plain_hex_give_the_same_digest),
		TEST(test_fingerprint_openssl_output_pastes_in_either_case),
		TEST(test_fingerprint_malformed_forms_are_rejected),
		TEST(test_fingerprint_format_is_openssls_colon_hex_and_round_trips),
		TEST(test_fingerprint_list_takes_commas_blanks_and_a_limit),
		TEST(test_backend_sslcertfingerprint_is_parsed_into_pins),
		TEST(test_bad_backend_sslcertfingerprint_is_named_and_keeps_the_old),
		TEST(test_pin_needs_backend_sslmode_require_or_above),
		TEST(test_passphrase_and_password_settings),
		TEST(test_proxy_protocol_is_off_with_no_networks_by_default),
		TEST(test_proxy_protocol_networks_parse_ipv4_ipv6_and_bare_addresses),
		TEST(test_proxy_protocol_networks_match_by_prefix),
		TEST(test_proxy_protocol_networks_zero_prefix_matches_its_family_only),
		TEST(test_proxy_protocol_networks_refuse_bad_entries),
		TEST(test_proxy_protocol_on_needs_networks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
