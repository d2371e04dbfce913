/*
 * test_policy: the ssl x require_ssl x sslmode matrix.
 *
 * The proxy never learns a client's sslmode; it only sees packets.  So this
 * file carries a small model of libpq's (15) client-side connection logic,
 * which sends real startup-phase packets, has them parsed by pgproto and
 * answered by policy_decide()/policy_advance(), and reacts the way libpq
 * does.  The outcome of each (ssl, require_ssl, sslmode) cell is then TLS,
 * plaintext, or refused, and is checked against the documented matrix:
 *
 *   | ssl | require_ssl | disable | allow | prefer | require | verify-ca | verify-full |
 *   | on  | on          | refused | TLS   | TLS    | TLS     | TLS       | TLS         |
 *   | on  | off         | plain   | plain | TLS    | TLS     | TLS       | TLS         |
 *   | off | on/off      | plain   | plain | plain  | refused | refused   | refused     |
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pgproto.h"
#include "policy.h"

/* ------------------------------------------------------------------ */
/* The client model                                                     */
/* ------------------------------------------------------------------ */

enum sslmode {
	SSLMODE_DISABLE,
	SSLMODE_ALLOW,
	SSLMODE_PREFER,
	SSLMODE_REQUIRE,
	SSLMODE_VERIFY_CA,
	SSLMODE_VERIFY_FULL,
	SSLMODE_COUNT
};

static const char *const sslmode_names[SSLMODE_COUNT] = {
	"disable", "allow", "prefer", "require", "verify-ca", "verify-full",
};

enum outcome {
	OUTCOME_TLS,		/* session forwarded to the backend over TLS */
	OUTCOME_PLAIN,		/* session forwarded in plaintext */
	OUTCOME_REFUSED,	/* the client ends up without a session */
	OUTCOME_PROTOCOL_ERROR,	/* the server answered something libpq never gets */
};

static const char *
outcome_name(enum outcome o)
{
	switch (o) {
	case OUTCOME_TLS:		return "TLS";
	case OUTCOME_PLAIN:		return "plain";
	case OUTCOME_REFUSED:		return "refused";
	case OUTCOME_PROTOCOL_ERROR:	return "protocol-error";
	}
	return "?";
}

/* What the model saw, for assertions beyond the bare outcome. */
struct client_trace {
	int	connections;		/* TCP connections opened */
	int	ssl_requests;		/* SSLRequests sent over all connections */
	int	plaintext_startups;	/* StartupMessages sent without TLS */
	int	tls_startups;		/* StartupMessages sent over TLS */
	int	refusals_no_ssl;	/* ErrorResponses 28000 from require_ssl */
	char	detail[256];		/* why a PROTOCOL_ERROR happened */
};

/* One server-side connection: its settings and the policy state. */
struct server_conn {
	const struct policy_settings	*set;
	struct policy_state		 st;
};

static size_t
build_ssl_request(uint8_t *buf, uint32_t code)
{
	pgproto_put32(buf, 8);
	pgproto_put32(buf + 4, code);
	return 8;
}

static size_t
build_startup(uint8_t *buf)
{
	static const char params[] = "user\0alice\0database\0shop\0";
	size_t	len = 8 + sizeof(params);	/* sizeof keeps the final NUL */

	pgproto_put32(buf, (uint32_t)len);
	pgproto_put32(buf + 4, 0x00030000u);
	memcpy(buf + 8, params, sizeof(params));
	return len;
}

static size_t
build_cancel(uint8_t *buf)
{
	pgproto_put32(buf, 16);
	pgproto_put32(buf + 4, PGPROTO_CANCEL_REQUEST_CODE);
	pgproto_put32(buf + 8, 4242);
	pgproto_put32(buf + 12, 0xdeadbeefu);
	return 16;
}

/*
 * The server side: parse the bytes exactly as the proxy would, then ask the
 * policy.  The packets built above are all valid, so the parse must succeed.
 */
static enum policy_action
server_receive(struct server_conn *conn, const uint8_t *buf, size_t len,
    enum pgproto_kind expect_kind)
{
	struct pgproto_packet	pkt;
	enum pgproto_status	st;
	enum policy_action	act;

	memset(&pkt, 0, sizeof(pkt));
	st = pgproto_parse_startup(buf, len, &pkt);
	assert_int_equal(st, PGPROTO_OK);
	assert_int_equal(pkt.kind, expect_kind);
	assert_int_equal(pkt.length, len);
	act = policy_decide(conn->set, &conn->st, pkt.kind);
	policy_advance(&conn->st, pkt.kind, act);
	return act;
}

static void
server_open(struct server_conn *conn, const struct policy_settings *set)
{
	memset(conn, 0, sizeof(*conn));
	conn->set = set;
}

/* Sends the StartupMessage and classifies the reply. */
enum startup_result { STARTUP_SESSION, STARTUP_ERROR_NO_SSL, STARTUP_OTHER };

static enum startup_result
client_send_startup(struct server_conn *conn, struct client_trace *tr,
    enum outcome *session)
{
	uint8_t			buf[64];
	size_t			len = build_startup(buf);
	enum policy_action	act;

	if (conn->st.tls_active)
		tr->tls_startups++;
	else
		tr->plaintext_startups++;
	act = server_receive(conn, buf, len, PGPROTO_STARTUP);
	if (act == POLICY_FORWARD) {
		*session = conn->st.tls_active ? OUTCOME_TLS : OUTCOME_PLAIN;
		return STARTUP_SESSION;
	}
	if (act == POLICY_REFUSE_NO_SSL) {
		tr->refusals_no_ssl++;
		return STARTUP_ERROR_NO_SSL;
	}
	snprintf(tr->detail, sizeof(tr->detail),
	    "StartupMessage answered with %s", policy_action_name(act));
	return STARTUP_OTHER;
}

/*
 * Sends an SSLRequest; returns 'S' or 'N' as the server's one-byte reply, or
 * 0 when the server answered with anything else (a close).
 */
static int
client_send_ssl_request(struct server_conn *conn, struct client_trace *tr)
{
	uint8_t			buf[8];
	size_t			len = build_ssl_request(buf, PGPROTO_SSL_REQUEST_CODE);
	enum policy_action	act;

	tr->ssl_requests++;
	act = server_receive(conn, buf, len, PGPROTO_SSL_REQUEST);
	if (act == POLICY_TLS_ACCEPT) {
		/* The handshake succeeds in this model; TLS must now be up. */
		if (!conn->st.tls_active) {
			snprintf(tr->detail, sizeof(tr->detail),
			    "'S' sent but policy_state.tls_active not set");
			return 0;
		}
		return PGPROTO_SSL_ACCEPT;
	}
	if (act == POLICY_DECLINE)
		return PGPROTO_SSL_DECLINE;
	snprintf(tr->detail, sizeof(tr->detail),
	    "SSLRequest answered with %s", policy_action_name(act));
	return 0;
}

/* gssencmode=prefer with credentials: a GSSENCRequest opens each connection. */
static int
client_send_gssenc_request(struct server_conn *conn, struct client_trace *tr)
{
	uint8_t			buf[8];
	size_t			len = build_ssl_request(buf,
				    PGPROTO_GSSENC_REQUEST_CODE);
	enum policy_action	act;

	act = server_receive(conn, buf, len, PGPROTO_GSSENC_REQUEST);
	if (act == POLICY_DECLINE)
		return PGPROTO_SSL_DECLINE;
	snprintf(tr->detail, sizeof(tr->detail),
	    "GSSENCRequest answered with %s", policy_action_name(act));
	return 0;
}

/*
 * One connection attempt in libpq's order: optional GSSENCRequest, then an
 * SSLRequest if the mode asks for one, then the StartupMessage.
 */
enum attempt_result { ATTEMPT_SESSION, ATTEMPT_REFUSED_NO_SSL, ATTEMPT_FAILED,
	ATTEMPT_PROTOCOL_ERROR };

static enum attempt_result
client_attempt(const struct policy_settings *set, bool try_ssl,
    bool ssl_mandatory, bool gss_first, struct client_trace *tr,
    enum outcome *session)
{
	struct server_conn	conn;

	server_open(&conn, set);
	tr->connections++;
	if (gss_first && client_send_gssenc_request(&conn, tr) == 0)
		return ATTEMPT_PROTOCOL_ERROR;
	if (try_ssl) {
		int	reply = client_send_ssl_request(&conn, tr);

		if (reply == 0)
			return ATTEMPT_PROTOCOL_ERROR;
		/* 'N' with require/verify-*: "server does not support SSL". */
		if (reply == PGPROTO_SSL_DECLINE && ssl_mandatory)
			return ATTEMPT_FAILED;
	}
	switch (client_send_startup(&conn, tr, session)) {
	case STARTUP_SESSION:
		return ATTEMPT_SESSION;
	case STARTUP_ERROR_NO_SSL:
		return ATTEMPT_REFUSED_NO_SSL;
	case STARTUP_OTHER:
		break;
	}
	return ATTEMPT_PROTOCOL_ERROR;
}

/* libpq 15's PQconnectPoll, reduced to what decides the session's security. */
static enum outcome
client_connect(const struct policy_settings *set, enum sslmode mode,
    bool gss_first, struct client_trace *tr)
{
	enum attempt_result	r;
	enum outcome		session = OUTCOME_PROTOCOL_ERROR;

	memset(tr, 0, sizeof(*tr));
	switch (mode) {
	case SSLMODE_DISABLE:
		r = client_attempt(set, false, false, gss_first, tr, &session);
		break;
	case SSLMODE_ALLOW:
		/* Plaintext first; after an ErrorResponse, once more with SSL. */
		r = client_attempt(set, false, false, gss_first, tr, &session);
		if (r == ATTEMPT_REFUSED_NO_SSL)
			r = client_attempt(set, true, false, gss_first, tr,
			    &session);
		break;
	case SSLMODE_PREFER:
		r = client_attempt(set, true, false, gss_first, tr, &session);
		break;
	case SSLMODE_REQUIRE:
	case SSLMODE_VERIFY_CA:
	case SSLMODE_VERIFY_FULL:
	default:
		r = client_attempt(set, true, true, gss_first, tr, &session);
		break;
	}
	switch (r) {
	case ATTEMPT_SESSION:
		return session;
	case ATTEMPT_REFUSED_NO_SSL:
	case ATTEMPT_FAILED:
		return OUTCOME_REFUSED;
	case ATTEMPT_PROTOCOL_ERROR:
		break;
	}
	return OUTCOME_PROTOCOL_ERROR;
}

/* ------------------------------------------------------------------ */
/* The matrix                                                           */
/* ------------------------------------------------------------------ */

struct matrix_row {
	bool		ssl, require_ssl;
	enum outcome	expect[SSLMODE_COUNT];
};

#define T	OUTCOME_TLS
#define P	OUTCOME_PLAIN
#define R	OUTCOME_REFUSED

static const struct matrix_row matrix[] = {
	/*            disable allow prefer require verify-ca verify-full */
	{ true,  true,  { R, T, T, T, T, T } },
	{ true,  false, { P, P, T, T, T, T } },
	{ false, true,  { P, P, P, R, R, R } },
	{ false, false, { P, P, P, R, R, R } },
};

#undef T
#undef P
#undef R

static void
check_matrix(bool gss_first)
{
	char	failures[4096];
	size_t	used = 0;
	int	nfail = 0, ncells = 0;

	failures[0] = '\0';
	for (size_t i = 0; i < sizeof(matrix) / sizeof(matrix[0]); i++) {
		const struct matrix_row		*row = &matrix[i];
		const struct policy_settings	 set = {
			.ssl = row->ssl, .require_ssl = row->require_ssl,
		};

		for (int m = 0; m < SSLMODE_COUNT; m++) {
			struct client_trace	tr;
			enum outcome		got;

			got = client_connect(&set, (enum sslmode)m, gss_first,
			    &tr);
			ncells++;
			if (got == row->expect[m])
				continue;
			nfail++;
			if (used < sizeof(failures)) {
				int n = snprintf(failures + used,
				    sizeof(failures) - used,
				    "\n  ssl=%s require_ssl=%s sslmode=%s%s: "
				    "expected %s, got %s%s%s",
				    row->ssl ? "on" : "off",
				    row->require_ssl ? "on" : "off",
				    sslmode_names[m],
				    gss_first ? " (GSSENCRequest first)" : "",
				    outcome_name(row->expect[m]),
				    outcome_name(got),
				    tr.detail[0] ? " -- " : "", tr.detail);
				if (n > 0)
					used += (size_t)n;
			}
		}
	}
	assert_int_equal(ncells, 24);
	if (nfail != 0)
		fail_msg("%d of 24 matrix cells wrong:%s", nfail, failures);
}

static void
test_matrix_all_24_cells_match_the_documented_outcome(void **state)
{
	(void)state;
	check_matrix(false);
}

static void
test_matrix_unchanged_when_client_sends_gssenc_request_first(void **state)
{
	(void)state;
	check_matrix(true);
}

/* The cells that need more than the bare outcome checked. */

static void
test_allow_client_retries_over_tls_when_required(void **state)
{
	const struct policy_settings	set = { .ssl = true, .require_ssl = true };
	struct client_trace		tr;

	(void)state;
	assert_int_equal(client_connect(&set, SSLMODE_ALLOW, false, &tr),
	    OUTCOME_TLS);
	/* The plaintext attempt was refused with an ErrorResponse ... */
	assert_int_equal(tr.refusals_no_ssl, 1);
	assert_int_equal(tr.plaintext_startups, 1);
	/* ... and libpq went on to a second connection that used TLS. */
	assert_int_equal(tr.connections, 2);
	assert_int_equal(tr.ssl_requests, 1);
	assert_int_equal(tr.tls_startups, 1);
}

/*
 * clientcert without require_ssl: a certificate can only come over TLS, so
 * plaintext is refused exactly as under require_ssl, and the matrix row is
 * the ssl=on require_ssl=on one.
 */
static void
test_clientcert_refuses_plaintext_like_require_ssl(void **state)
{
	const struct policy_settings	set = { .ssl = true,
					    .require_ssl = false,
					    .clientcert = true };
	static const enum outcome	want[SSLMODE_COUNT] = {
		OUTCOME_REFUSED, OUTCOME_TLS, OUTCOME_TLS, OUTCOME_TLS,
		OUTCOME_TLS, OUTCOME_TLS,
	};
	struct client_trace		tr;

	(void)state;
	for (int m = 0; m < SSLMODE_COUNT; m++)
		if (client_connect(&set, (enum sslmode)m, false, &tr) != want[m])
			fail_msg("clientcert on, sslmode=%s: wrong outcome",
			    sslmode_names[m]);
	assert_int_equal(client_connect(&set, SSLMODE_ALLOW, false, &tr),
	    OUTCOME_TLS);
	assert_int_equal(tr.refusals_no_ssl, 1);
}

static void
test_allow_client_stays_plaintext_when_tls_optional(void **state)
{
	const struct policy_settings	set = { .ssl = true, .require_ssl = false };
	struct client_trace		tr;

	(void)state;
	assert_int_equal(client_connect(&set, SSLMODE_ALLOW, false, &tr),
	    OUTCOME_PLAIN);
	assert_int_equal(tr.connections, 1);
	assert_int_equal(tr.ssl_requests, 0);
	assert_int_equal(tr.refusals_no_ssl, 0);
}

static void
test_disable_client_is_refused_with_error_when_tls_required(void **state)
{
	const struct policy_settings	set = { .ssl = true, .require_ssl = true };
	struct client_trace		tr;

	(void)state;
	assert_int_equal(client_connect(&set, SSLMODE_DISABLE, false, &tr),
	    OUTCOME_REFUSED);
	/* Refused by an ErrorResponse, not by a silent close. */
	assert_int_equal(tr.refusals_no_ssl, 1);
	assert_int_equal(tr.connections, 1);
}

static void
test_require_client_gives_up_after_n_when_ssl_off(void **state)
{
	const struct policy_settings	set = { .ssl = false, .require_ssl = false };
	struct client_trace		tr;

	(void)state;
	assert_int_equal(client_connect(&set, SSLMODE_REQUIRE, false, &tr),
	    OUTCOME_REFUSED);
	/* The client stopped at 'N'; no StartupMessage left it. */
	assert_int_equal(tr.plaintext_startups, 0);
	assert_int_equal(tr.refusals_no_ssl, 0);
}

static void
test_prefer_client_falls_back_to_plaintext_on_same_connection_when_ssl_off(
    void **state)
{
	const struct policy_settings	set = { .ssl = false, .require_ssl = false };
	struct client_trace		tr;

	(void)state;
	assert_int_equal(client_connect(&set, SSLMODE_PREFER, false, &tr),
	    OUTCOME_PLAIN);
	assert_int_equal(tr.connections, 1);
	assert_int_equal(tr.ssl_requests, 1);
	assert_int_equal(tr.plaintext_startups, 1);
}

static void
test_require_ssl_without_ssl_does_not_refuse_plaintext(void **state)
{
	/* require_ssl needs ssl: with ssl off it must not lock everyone out. */
	const struct policy_settings	set = { .ssl = false, .require_ssl = true };
	const struct policy_state	st = { 0 };

	(void)state;
	assert_int_equal(policy_decide(&set, &st, PGPROTO_STARTUP),
	    POLICY_FORWARD);
	assert_int_equal(policy_decide(&set, &st, PGPROTO_SSL_REQUEST),
	    POLICY_DECLINE);
}

/* ------------------------------------------------------------------ */
/* Direct decisions                                                     */
/* ------------------------------------------------------------------ */

static const struct policy_settings all_settings[] = {
	{ .ssl = true,  .require_ssl = true },
	{ .ssl = true,  .require_ssl = false },
	{ .ssl = false, .require_ssl = true },
	{ .ssl = false, .require_ssl = false },
};
#define N_SETTINGS	(sizeof(all_settings) / sizeof(all_settings[0]))

/* decide + advance, as the proxy does for each packet. */
static enum policy_action
step(const struct policy_settings *set, struct policy_state *st,
    enum pgproto_kind kind)
{
	enum policy_action	act = policy_decide(set, st, kind);

	policy_advance(st, kind, act);
	return act;
}

static void
test_first_ssl_request_accepted_when_ssl_on_declined_when_off(void **state)
{
	const struct policy_settings	on = { .ssl = true, .require_ssl = false };
	const struct policy_settings	off = { .ssl = false, .require_ssl = false };
	struct policy_state		st = { 0 };

	(void)state;
	assert_int_equal(step(&on, &st, PGPROTO_SSL_REQUEST), POLICY_TLS_ACCEPT);
	assert_true(st.tls_active);
	assert_true(st.ssl_requested);

	memset(&st, 0, sizeof(st));
	assert_int_equal(step(&off, &st, PGPROTO_SSL_REQUEST), POLICY_DECLINE);
	assert_false(st.tls_active);
	assert_true(st.ssl_requested);
}

static void
test_second_ssl_request_is_refused_as_repeat(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		struct policy_state	st = { 0 };
		enum policy_action	first, second;

		first = step(&all_settings[i], &st, PGPROTO_SSL_REQUEST);
		assert_true(first == POLICY_TLS_ACCEPT || first == POLICY_DECLINE);
		second = step(&all_settings[i], &st, PGPROTO_SSL_REQUEST);
		if (second != POLICY_REFUSE_REPEAT)
			fail_msg("ssl=%d require_ssl=%d: second SSLRequest got "
			    "%s, expected refuse-repeat",
			    all_settings[i].ssl, all_settings[i].require_ssl,
			    policy_action_name(second));
	}
}

static void
test_second_gssenc_request_is_refused_as_repeat(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		struct policy_state	st = { 0 };

		assert_int_equal(step(&all_settings[i], &st,
		    PGPROTO_GSSENC_REQUEST), POLICY_DECLINE);
		assert_true(st.gssenc_requested);
		assert_false(st.tls_active);
		assert_int_equal(step(&all_settings[i], &st,
		    PGPROTO_GSSENC_REQUEST), POLICY_REFUSE_REPEAT);
	}
}

static void
test_gssenc_declined_then_ssl_request_accepted(void **state)
{
	const struct policy_settings	set = { .ssl = true, .require_ssl = true };
	struct policy_state		st = { 0 };

	(void)state;
	assert_int_equal(step(&set, &st, PGPROTO_GSSENC_REQUEST), POLICY_DECLINE);
	assert_int_equal(step(&set, &st, PGPROTO_SSL_REQUEST), POLICY_TLS_ACCEPT);
	assert_true(st.tls_active);
	assert_int_equal(step(&set, &st, PGPROTO_STARTUP), POLICY_FORWARD);
}

static void
test_ssl_request_after_tls_active_is_refused_as_repeat(void **state)
{
	/*
	 * Pin the "never once TLS is up" rule on its own, without the
	 * ssl_requested flag that normally accompanies it.
	 */
	struct policy_state	st = { .tls_active = true };

	(void)state;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		assert_int_equal(policy_decide(&all_settings[i], &st,
		    PGPROTO_SSL_REQUEST), POLICY_REFUSE_REPEAT);
		assert_int_equal(policy_decide(&all_settings[i], &st,
		    PGPROTO_GSSENC_REQUEST), POLICY_REFUSE_REPEAT);
	}
}

static void
test_ssl_request_inside_tls_session_after_accept_is_refused(void **state)
{
	const struct policy_settings	set = { .ssl = true, .require_ssl = false };
	struct policy_state		st = { 0 };

	(void)state;
	assert_int_equal(step(&set, &st, PGPROTO_SSL_REQUEST), POLICY_TLS_ACCEPT);
	assert_int_equal(step(&set, &st, PGPROTO_SSL_REQUEST),
	    POLICY_REFUSE_REPEAT);
	/* A refused repeat must not switch TLS off. */
	assert_true(st.tls_active);
}

static void
test_gssenc_request_after_tls_accept_is_refused(void **state)
{
	const struct policy_settings	set = { .ssl = true, .require_ssl = false };
	struct policy_state		st = { 0 };

	(void)state;
	assert_int_equal(step(&set, &st, PGPROTO_SSL_REQUEST), POLICY_TLS_ACCEPT);
	assert_int_equal(step(&set, &st, PGPROTO_GSSENC_REQUEST),
	    POLICY_REFUSE_REPEAT);
}

static void
test_cancel_request_is_always_forwarded_as_cancel(void **state)
{
	static const struct policy_state states[] = {
		{ 0 },
		{ .ssl_requested = true },
		{ .gssenc_requested = true },
		{ .ssl_requested = true, .tls_active = true },
	};

	(void)state;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		for (size_t j = 0; j < sizeof(states) / sizeof(states[0]); j++) {
			enum policy_action a = policy_decide(&all_settings[i],
			    &states[j], PGPROTO_CANCEL_REQUEST);

			if (a != POLICY_CANCEL)
				fail_msg("ssl=%d require_ssl=%d state#%zu: "
				    "CancelRequest got %s",
				    all_settings[i].ssl,
				    all_settings[i].require_ssl, j,
				    policy_action_name(a));
		}
	}
}

static void
test_plaintext_cancel_request_passes_even_with_require_ssl(void **state)
{
	const struct policy_settings	set = { .ssl = true, .require_ssl = true };
	struct server_conn		conn;
	uint8_t				buf[16];
	size_t				len = build_cancel(buf);

	(void)state;
	server_open(&conn, &set);
	assert_int_equal(server_receive(&conn, buf, len, PGPROTO_CANCEL_REQUEST),
	    POLICY_CANCEL);
	assert_false(conn.st.tls_active);
}

static void
test_plaintext_startup_refused_when_require_ssl(void **state)
{
	const struct policy_settings	set = { .ssl = true, .require_ssl = true };
	struct policy_state		st = { 0 };

	(void)state;
	assert_int_equal(policy_decide(&set, &st, PGPROTO_STARTUP),
	    POLICY_REFUSE_NO_SSL);
	/* Also after a declined GSSENCRequest: still plaintext. */
	assert_int_equal(step(&set, &st, PGPROTO_GSSENC_REQUEST), POLICY_DECLINE);
	assert_int_equal(policy_decide(&set, &st, PGPROTO_STARTUP),
	    POLICY_REFUSE_NO_SSL);
}

static void
test_startup_after_tls_with_require_ssl_is_forwarded(void **state)
{
	const struct policy_settings	set = { .ssl = true, .require_ssl = true };
	struct policy_state		st = { 0 };

	(void)state;
	assert_int_equal(step(&set, &st, PGPROTO_SSL_REQUEST), POLICY_TLS_ACCEPT);
	assert_int_equal(policy_decide(&set, &st, PGPROTO_STARTUP),
	    POLICY_FORWARD);
}

static void
test_plaintext_startup_forwarded_when_tls_optional(void **state)
{
	const struct policy_settings	set = { .ssl = true, .require_ssl = false };
	struct policy_state		st = { 0 };

	(void)state;
	assert_int_equal(policy_decide(&set, &st, PGPROTO_STARTUP),
	    POLICY_FORWARD);
}

static void
test_advance_records_only_what_happened(void **state)
{
	struct policy_state	st = { 0 };

	(void)state;
	/* A declined SSLRequest marks the request but not TLS. */
	policy_advance(&st, PGPROTO_SSL_REQUEST, POLICY_DECLINE);
	assert_true(st.ssl_requested);
	assert_false(st.tls_active);
	assert_false(st.gssenc_requested);

	/* A StartupMessage or a cancel changes none of the flags. */
	memset(&st, 0, sizeof(st));
	policy_advance(&st, PGPROTO_STARTUP, POLICY_FORWARD);
	policy_advance(&st, PGPROTO_CANCEL_REQUEST, POLICY_CANCEL);
	assert_false(st.ssl_requested);
	assert_false(st.gssenc_requested);
	assert_false(st.tls_active);
}

static void
test_policy_action_names_are_distinct_strings(void **state)
{
	static const enum policy_action actions[] = {
		POLICY_TLS_ACCEPT, POLICY_DECLINE, POLICY_FORWARD,
		POLICY_CANCEL, POLICY_REFUSE_NO_SSL, POLICY_REFUSE_REPEAT,
	};
	const size_t	n = sizeof(actions) / sizeof(actions[0]);
	const char	*unknown = policy_action_name((enum policy_action)99);

	(void)state;
	assert_non_null(unknown);
	for (size_t i = 0; i < n; i++) {
		const char *a = policy_action_name(actions[i]);

		assert_non_null(a);
		assert_true(strlen(a) > 0);
		/* A real action never reads like the out-of-range fallback. */
		assert_string_not_equal(a, unknown);
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(a, policy_action_name(actions[j]));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matrix_all_24_cells_match_the_documented_outcome),
		cmocka_unit_test(test_matrix_unchanged_when_client_sends_gssenc_request_first),
		cmocka_unit_test(test_allow_client_retries_over_tls_when_required),
		cmocka_unit_test(test_allow_client_stays_plaintext_when_tls_optional),
		cmocka_unit_test(test_clientcert_refuses_plaintext_like_require_ssl),
		cmocka_unit_test(test_disable_client_is_refused_with_error_when_tls_required),
		cmocka_unit_test(test_require_client_gives_up_after_n_when_ssl_off),
		cmocka_unit_test(test_prefer_client_falls_back_to_plaintext_on_same_connection_when_ssl_off),
		cmocka_unit_test(test_require_ssl_without_ssl_does_not_refuse_plaintext),
		cmocka_unit_test(test_first_ssl_request_accepted_when_ssl_on_declined_when_off),
		cmocka_unit_test(test_second_ssl_request_is_refused_as_repeat),
		cmocka_unit_test(test_second_gssenc_request_is_refused_as_repeat),
		cmocka_unit_test(test_gssenc_declined_then_ssl_request_accepted),
		cmocka_unit_test(test_ssl_request_after_tls_active_is_refused_as_repeat),
		cmocka_unit_test(test_ssl_request_inside_tls_session_after_accept_is_refused),
		cmocka_unit_test(test_gssenc_request_after_tls_accept_is_refused),
		cmocka_unit_test(test_cancel_request_is_always_forwarded_as_cancel),
		cmocka_unit_test(test_plaintext_cancel_request_passes_even_with_require_ssl),
		cmocka_unit_test(test_plaintext_startup_refused_when_require_ssl),
		cmocka_unit_test(test_startup_after_tls_with_require_ssl_is_forwarded),
		cmocka_unit_test(test_plaintext_startup_forwarded_when_tls_optional),
		cmocka_unit_test(test_advance_records_only_what_happened),
		cmocka_unit_test(test_policy_action_names_are_distinct_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
