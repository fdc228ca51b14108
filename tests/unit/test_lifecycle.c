/* SPDX-License-Identifier: MIT */
/* Lifecycle tests: every cell of the transition table in daemon/LIFECYCLE.md, then the time
 * logic (backoff, the token's end on two clocks, get decisions). Time is injected (struct
 * lc_time values built here, never the real clock), the login hooks are fakes that only
 * count, and the vault is real. No socket, no helper process. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "common/secret.h"
#include "daemon/lifecycle.h"
#include "daemon/vault.h"
#include "proto/proto.h"
#include "testjwt.h"

#define USEC      1000000ULL
#define BASE_WALL INT64_C(1700000000)
#define BASE_BOOT (1000 * USEC)
#define LIFETIME  INT64_C(3600) /* of every login token minted here */
#define URL       "https://regscale.example.test"
#define URL2      "https://other.example.test"

/* ---- fake hooks ---- */

struct fake {
	unsigned starts[_LC_SLOT_MAX];
	unsigned checks[_LC_SLOT_MAX]; /* start_check(): a pasted token sent to RegScale */
	unsigned cancels[_LC_SLOT_MAX];
	unsigned changed;
	/* what the last start_login() got */
	enum lc_slot slot;
	char username[64];
	char password[64];
	bool has_mfa;
	char mfa[16];
	int start_ret;
};

static int fake_start_login(void *userdata, enum lc_slot slot, const char *username,
		const struct secret *password, const char *mfa, const char **ret_reason)
{
	struct fake *fk = userdata;

	assert_true(slot < _LC_SLOT_MAX);
	fk->starts[slot]++;
	fk->slot = slot;
	snprintf(fk->username, sizeof(fk->username), "%s", username ? username : "");
	snprintf(fk->password, sizeof(fk->password), "%.*s", (int)password->len, password->data);
	fk->has_mfa = mfa != NULL;
	snprintf(fk->mfa, sizeof(fk->mfa), "%s", mfa ? mfa : "");
	if (fk->start_ret < 0)
		*ret_reason = "fake start failure";
	return fk->start_ret;
}

static int fake_start_check(void *userdata, enum lc_slot slot, const struct secret *token,
		const char **ret_reason)
{
	struct fake *fk = userdata;

	assert_true(slot < _LC_SLOT_MAX);
	assert_true(token && token->len > 0);
	fk->checks[slot]++;
	return 0;
}

static void fake_cancel_login(void *userdata, enum lc_slot slot)
{
	struct fake *fk = userdata;

	assert_true(slot < _LC_SLOT_MAX);
	fk->cancels[slot]++;
}

static void fake_changed(void *userdata)
{
	struct fake *fk = userdata;

	fk->changed++;
}

static void fake_reset(struct fake *fk)
{
	memset(fk->starts, 0, sizeof(fk->starts));
	memset(fk->checks, 0, sizeof(fk->checks));
	memset(fk->cancels, 0, sizeof(fk->cancels));
	fk->changed = 0;
}

/* ---- the world a test runs in ---- */

struct row;

struct world {
	struct vault *vault;
	struct lifecycle *lc;
	struct fake fk;
	struct lc_time now;
	int64_t wall_off; /* how far the wall clock was set away from boottime */
	unsigned jti;     /* makes every minted token distinct */
	struct secret *pw1, *pw2;
	/* The last lifecycle_configure() arguments, for "configure: unchanged". */
	const char *cfg_user;
	const struct secret *cfg_pw;
	const char *cfg_url;
	/* What a client refresh returned. */
	int rc;
	uint64_t ticket;
	/* A table cell: its row and the token before and after the event. */
	const struct row *row;
	struct secret *before, *after;
	char *error_before;
	unsigned bad;
};

/* Sets the boottime; the wall clock follows it (plus any jump). */
static void set_boot(struct world *w, uint64_t boot)
{
	assert_true(boot >= w->now.boot); /* boottime never goes back */
	w->now.boot = boot;
	w->now.wall = BASE_WALL + (int64_t)((boot - BASE_BOOT) / USEC) + w->wall_off;
}

static void advance(struct world *w, uint64_t usec)
{
	set_boot(w, w->now.boot + usec);
}

/* Sets the wall clock delta seconds away (boottime stays). */
static void jump_wall(struct world *w, int64_t delta)
{
	w->wall_off += delta;
	w->now.wall += delta;
}

static struct world *world_new(void)
{
	struct world *w = calloc(1, sizeof(*w));
	struct lc_hooks hooks = {
			.start_login = fake_start_login,
			.start_check = fake_start_check,
			.cancel_login = fake_cancel_login,
			.changed = fake_changed,
	};

	assert_non_null(w);
	assert_int_equal(vault_new(&w->vault), 0);
	hooks.userdata = &w->fk;
	assert_int_equal(lifecycle_new(w->vault, &hooks, &w->lc), 0);
	w->now = (struct lc_time){.wall = BASE_WALL, .boot = BASE_BOOT};
	w->pw1 = secret_new_from("password-one", strlen("password-one"));
	w->pw2 = secret_new_from("password-two", strlen("password-two"));
	assert_non_null(w->pw1);
	assert_non_null(w->pw2);
	return w;
}

static void world_free(struct world *w)
{
	if (!w)
		return;
	lifecycle_free(w->lc);
	vault_free(w->vault);
	secret_free(w->pw1);
	secret_free(w->pw2);
	secret_free(w->before);
	secret_free(w->after);
	free(w->error_before);
	free(w);
}

static int world_setup(void **state)
{
	struct world *w = world_new();

	w->row = *state; /* the cell's row, NULL for the other tests */
	*state = w;
	return 0;
}

static int world_teardown(void **state)
{
	world_free(*state);
	return 0;
}

/* Returns a new JWT (caller frees) with the claims given; has_iat false leaves iat out. */
static char *mint(struct world *w, bool has_iat, int64_t iat, int64_t exp, const char *user)
{
	char payload[256], iat_part[48] = "";

	if (has_iat)
		snprintf(iat_part, sizeof(iat_part), "\"iat\":%lld,", (long long)iat);
	snprintf(payload, sizeof(payload), "{\"id\":\"%s\",\"jti\":\"t%u\",%s\"exp\":%lld}", user,
			++w->jti, iat_part, (long long)exp);
	return test_jwt(payload);
}

/* Delivers a login result for slot at the current time; token may be NULL. */
static void deliver(struct world *w, enum lc_slot slot, enum helper_outcome outcome,
		int64_t retry_after, const char *token)
{
	struct lc_login_result res = {
			.outcome = outcome,
			.retry_after = retry_after,
			.expires_in = -1,
			.user_id = "",
			.message = outcome == HELPER_OK ? "ok" : "fake failure",
			.token = token,
			.token_len = token ? strlen(token) : 0,
	};

	lifecycle_login_done(w->lc, slot, &res, &w->now);
}

/* A successful login for slot with a token iat = now, exp = now + LIFETIME. */
static void deliver_ok(struct world *w, enum lc_slot slot)
{
	char *t = mint(w, true, w->now.wall, w->now.wall + LIFETIME,
			slot == LC_SLOT_IDENTITY ? "u-identity" : "u-candidate");

	deliver(w, slot, HELPER_OK, -1, t);
	free(t);
}

static void configure(struct world *w, const char *user, const struct secret *pw, const char *url)
{
	w->cfg_user = user;
	w->cfg_pw = pw;
	w->cfg_url = url;
	assert_true(lifecycle_configure(w->lc, user, pw, url, &w->now) >= 0);
}

static void client_login(struct world *w, const char *user, const char *password, const char *mfa)
{
	const char *reason = NULL;
	uint64_t ticket;

	assert_int_equal(lifecycle_login(w->lc, user, password, strlen(password), mfa, &w->now,
					 &ticket, &reason),
			0);
}

static enum proto_state state_of(const struct world *w)
{
	return lifecycle_state(w->lc, &w->now);
}

/* The token's end on boottime as lifecycle_info() tells it (never before now). */
static uint64_t token_end(const struct world *w)
{
	struct lc_info info;

	lifecycle_info(w->lc, &w->now, &info);
	assert_true(info.has_token);
	if (info.expires_at <= w->now.wall)
		return w->now.boot;
	return w->now.boot + (uint64_t)(info.expires_at - w->now.wall) * USEC;
}

/* ---- the states, reached as LIFECYCLE.md says under "Transitions" ---- */

static void to_no_token(struct world *w)
{
	configure(w, NULL, NULL, NULL);
}

static void to_logging_in(struct world *w)
{
	configure(w, "alice", w->pw1, URL);
}

static void to_valid(struct world *w)
{
	to_logging_in(w);
	deliver_ok(w, LC_SLOT_IDENTITY);
}

static void to_refreshing(struct world *w)
{
	to_valid(w);
	set_boot(w, lifecycle_next_wakeup(w->lc, &w->now));
	lifecycle_tick(w->lc, &w->now);
}

static void to_retrying(struct world *w)
{
	to_logging_in(w);
	deliver(w, LC_SLOT_IDENTITY, HELPER_TRANSIENT, -1, NULL);
}

static void to_login_required(struct world *w)
{
	to_no_token(w);
	client_login(w, "carol", "carol-password", "123456");
	deliver_ok(w, LC_SLOT_CANDIDATE);
}

static void to_expired(struct world *w)
{
	to_login_required(w);
	set_boot(w, token_end(w) + 1 * USEC);
	lifecycle_tick(w->lc, &w->now);
}

static void to_credentials_rejected(struct world *w)
{
	to_logging_in(w);
	deliver(w, LC_SLOT_IDENTITY, HELPER_REJECTED, -1, NULL);
}

static void (*const setups[_PROTO_STATE_MAX])(struct world *w) = {
		[PROTO_STATE_NO_TOKEN] = to_no_token,
		[PROTO_STATE_LOGGING_IN] = to_logging_in,
		[PROTO_STATE_VALID] = to_valid,
		[PROTO_STATE_REFRESHING] = to_refreshing,
		[PROTO_STATE_RETRYING] = to_retrying,
		[PROTO_STATE_EXPIRED] = to_expired,
		[PROTO_STATE_CREDENTIALS_REJECTED] = to_credentials_rejected,
		[PROTO_STATE_LOGIN_REQUIRED] = to_login_required,
};

/* Reaches state s in w and checks that it is s. */
static void reach(struct world *w, enum proto_state s)
{
	setups[s](w);
	if (state_of(w) != s)
		fail_msg("setup for %s reached %s", proto_state_name(s),
				proto_state_name(state_of(w)));
	fake_reset(&w->fk);
}

/* ---- the events, one row of the table each ---- */

enum event {
	EV_CONF_ACCOUNT,
	EV_CONF_PASSWORD,
	EV_CONF_UNCHANGED,
	EV_CONF_INVALID,
	EV_LOGIN_OK,
	EV_PASSING,
	EV_REJECTED,
	EV_IMPOSSIBLE,
	EV_TIMER,
	EV_EXPIRED,
	EV_CLIENT_OK,
	EV_CLIENT_FAILED,
	EV_CLIENT_MFA,
	EV_PASTE_OK,
	EV_PASTE_REFUSED,
	EV_LOGOUT,
	EV_REFRESH,
	EV_TOKEN_FILE,
	EV_CLOCK_FWD,
	EV_CLOCK_BACK,
	EV_RELOADED,
	_EV_MAX,
};

static const char *const event_names[_EV_MAX] = {
		[EV_CONF_ACCOUNT] = "configure: new account",
		[EV_CONF_PASSWORD] = "configure: new password",
		[EV_CONF_UNCHANGED] = "configure: unchanged",
		[EV_CONF_INVALID] = "configure: invalid or empty",
		[EV_LOGIN_OK] = "login ok",
		[EV_PASSING] = "passing failure",
		[EV_REJECTED] = "rejected",
		[EV_IMPOSSIBLE] = "impossible",
		[EV_TIMER] = "timer due",
		[EV_EXPIRED] = "token expired",
		[EV_CLIENT_OK] = "client login ok",
		[EV_CLIENT_FAILED] = "client login failed",
		[EV_CLIENT_MFA] = "client MFA login ok",
		[EV_PASTE_OK] = "client paste accepted",
		[EV_PASTE_REFUSED] = "client paste refused",
		[EV_LOGOUT] = "logout",
		[EV_REFRESH] = "client refresh",
		[EV_TOKEN_FILE] = "token file changed",
		[EV_CLOCK_FWD] = "clock forward",
		[EV_CLOCK_BACK] = "clock back",
		[EV_RELOADED] = "reloaded",
};

static void ev_conf_account(struct world *w)
{
	configure(w, "bob", w->pw2, URL2);
	if (w->fk.starts[LC_SLOT_IDENTITY]) {
		assert_string_equal(w->fk.username, "bob");
		assert_string_equal(w->fk.password, "password-two");
	}
}

static void ev_conf_password(struct world *w)
{
	configure(w, "alice", w->pw2, URL);
	if (w->fk.starts[LC_SLOT_IDENTITY]) {
		assert_string_equal(w->fk.username, "alice");
		assert_string_equal(w->fk.password, "password-two");
	}
}

static void ev_conf_unchanged(struct world *w)
{
	configure(w, w->cfg_user, w->cfg_pw, w->cfg_url);
}

static void ev_conf_invalid(struct world *w)
{
	/* Refused by the wiring (tokend_reload()): no event reaches the lifecycle, so this
	 * applies nothing and the row checks that nothing changes (tested end to end). */
}

static void ev_login_ok(struct world *w)
{
	deliver_ok(w, LC_SLOT_IDENTITY);
}

static void ev_passing(struct world *w)
{
	deliver(w, LC_SLOT_IDENTITY, HELPER_TRANSIENT, -1, NULL);
}

static void ev_rejected(struct world *w)
{
	deliver(w, LC_SLOT_IDENTITY, HELPER_REJECTED, -1, NULL);
}

static void ev_impossible(struct world *w)
{
	deliver(w, LC_SLOT_IDENTITY, HELPER_CONFIG, -1, NULL);
}

/* The timer at the scheduled refresh or retry; a spurious one (now) when none is. */
static void ev_timer(struct world *w)
{
	struct lc_info info;

	lifecycle_info(w->lc, &w->now, &info);
	if (info.next_refresh) {
		uint64_t at = lifecycle_next_wakeup(w->lc, &w->now);
		assert_true(at != UINT64_MAX);
		if (at > w->now.boot)
			set_boot(w, at);
	}
	lifecycle_tick(w->lc, &w->now);
}

/* The timer 1 s past the token's end; without a token, 1 s past where a token got now
 * would end (a retry pending is long due then). */
static void ev_expired(struct world *w)
{
	struct lc_info info;
	uint64_t at;

	lifecycle_info(w->lc, &w->now, &info);
	at = (info.has_token ? token_end(w) : w->now.boot + (uint64_t)LIFETIME * USEC) + USEC;
	if (at < w->now.boot + USEC)
		at = w->now.boot + USEC;
	set_boot(w, at);
	lifecycle_tick(w->lc, &w->now);
}

static void ev_client_ok(struct world *w)
{
	client_login(w, "carol", "carol-password-2", NULL);
	assert_int_equal(w->fk.starts[LC_SLOT_CANDIDATE], 1);
	assert_false(w->fk.has_mfa);
	deliver_ok(w, LC_SLOT_CANDIDATE);
}

static void ev_client_failed(struct world *w)
{
	client_login(w, "carol", "carol-password-2", NULL);
	assert_int_equal(w->fk.starts[LC_SLOT_CANDIDATE], 1);
	deliver(w, LC_SLOT_CANDIDATE, HELPER_REJECTED, -1, NULL);
}

static void ev_client_mfa(struct world *w)
{
	client_login(w, "carol", "carol-password", "654321");
	assert_int_equal(w->fk.starts[LC_SLOT_CANDIDATE], 1);
	assert_true(w->fk.has_mfa);
	assert_string_equal(w->fk.mfa, "654321");
	deliver_ok(w, LC_SLOT_CANDIDATE);
}

/* A client pastes a token for dave, which RegScale is asked about and answers outcome. */
static void paste(struct world *w, enum helper_outcome outcome)
{
	char *t = mint(w, true, w->now.wall, w->now.wall + 2 * LIFETIME, "u-pasted");
	const char *reason = NULL;
	uint64_t ticket;

	assert_int_equal(lifecycle_paste(w->lc, t, strlen(t), true, &w->now, &ticket, &reason), 0);
	free(t);
	assert_int_equal(w->fk.checks[LC_SLOT_CANDIDATE], 1);
	assert_int_equal(w->fk.starts[LC_SLOT_CANDIDATE], 0); /* no login: a check */
	deliver(w, LC_SLOT_CANDIDATE, outcome, -1, NULL);
}

static void ev_paste_ok(struct world *w)
{
	paste(w, HELPER_OK);
}

static void ev_paste_refused(struct world *w)
{
	paste(w, HELPER_REJECTED);
}

static void ev_logout(struct world *w)
{
	lifecycle_logout(w->lc);
}

static void ev_refresh(struct world *w)
{
	const char *reason = NULL;

	w->ticket = UINT64_MAX;
	w->rc = lifecycle_refresh(w->lc, "client refresh", NULL, &w->now, &w->ticket, &reason);
}

static void ev_token_file(struct world *w)
{
	const char *why = NULL;
	char *t = mint(w, true, w->now.wall, w->now.wall + 86400, "u-service");

	assert_int_equal(lifecycle_set_service_token(w->lc, t, strlen(t), &w->now, &why), 0);
	free(t);
}

/* Forward past the refresh point, not past exp: 3000 s from where valid is reached. A token
 * that has less than that left by the wall clock (refreshing is reached past its refresh
 * point) gets half of what it has left instead, so that the event stays what the table
 * means and does not turn into "token expired". */
static void ev_clock_fwd(struct world *w)
{
	struct lc_info info;
	int64_t delta = 3000;

	lifecycle_info(w->lc, &w->now, &info);
	if (info.has_token && info.expires_at > w->now.wall &&
			info.expires_at - w->now.wall <= delta)
		delta = (info.expires_at - w->now.wall) / 2;
	jump_wall(w, delta);
	lifecycle_clock_jumped(w->lc, &w->now);
}

static void ev_clock_back(struct world *w)
{
	jump_wall(w, -3600);
	lifecycle_clock_jumped(w->lc, &w->now);
}

static void ev_reloaded(struct world *w)
{
	lifecycle_reloaded(w->lc, &w->now);
}

static void (*const events[_EV_MAX])(struct world *w) = {
		[EV_CONF_ACCOUNT] = ev_conf_account,
		[EV_CONF_PASSWORD] = ev_conf_password,
		[EV_CONF_UNCHANGED] = ev_conf_unchanged,
		[EV_CONF_INVALID] = ev_conf_invalid,
		[EV_LOGIN_OK] = ev_login_ok,
		[EV_PASSING] = ev_passing,
		[EV_REJECTED] = ev_rejected,
		[EV_IMPOSSIBLE] = ev_impossible,
		[EV_TIMER] = ev_timer,
		[EV_EXPIRED] = ev_expired,
		[EV_CLIENT_OK] = ev_client_ok,
		[EV_CLIENT_FAILED] = ev_client_failed,
		[EV_CLIENT_MFA] = ev_client_mfa,
		[EV_PASTE_OK] = ev_paste_ok,
		[EV_PASTE_REFUSED] = ev_paste_refused,
		[EV_LOGOUT] = ev_logout,
		[EV_REFRESH] = ev_refresh,
		[EV_TOKEN_FILE] = ev_token_file,
		[EV_CLOCK_FWD] = ev_clock_fwd,
		[EV_CLOCK_BACK] = ev_clock_back,
		[EV_RELOADED] = ev_reloaded,
};

/* ---- the table ---- */

enum token_effect {
	TK_KEPT,      /* the same token bytes as before */
	TK_NEW,       /* a token with other bytes than before (or none before) */
	TK_DROPPED,   /* none held after, one held before */
	TK_NONE,      /* none before, none after */
	TK_UNCHANGED, /* "—": KEPT when one was held, else NONE */
};

enum sched_effect {
	SC_ANY,  /* the table does not say */
	SC_NONE, /* lifecycle_info() next_refresh == 0 */
	SC_SET,  /* next_refresh != 0 */
	SC_SAME, /* "—": none before and after, or the same boottime (wall may move) */
};

/* What else a cell says. */
enum {
	F_NOCHANGE = 1 << 0,   /* "—": no login cancelled, last_error as before */
	F_CANCEL = 1 << 1,     /* a running login is cancelled */
	F_SERVED = 1 << 2,     /* a get (no min_valid) is served the token after the event */
	F_NOT_SERVED = 1 << 3, /* it is not */
	F_CAROL = 1 << 4,      /* the identity is now carol's (the client login's) */
	F_SERVICE = 1 << 5,    /* the token is a service token */
	F_PASTED = 1 << 6,     /* the token is the pasted one, served, and nothing renews it */
};

#define RC_NONE INT_MIN /* the event returns nothing to check */

struct row {
	enum proto_state from;
	enum event event;
	enum proto_state to;
	unsigned logins; /* logins the event starts for the identity (slot LC_SLOT_IDENTITY) */
	enum token_effect token;
	enum sched_effect sched;
	unsigned flags;
	int rc; /* client refresh: what lifecycle_refresh() returns; 0 = a login runs for it */
};

#define CELL(f, e, t, n, tk, sc, fl)                                                               \
	{                                                                                          \
		.from = PROTO_STATE_##f, .event = EV_##e, .to = PROTO_STATE_##t, .logins = n,      \
		.token = TK_##tk, .sched = SC_##sc, .flags = fl, .rc = RC_NONE                     \
	}
#define REFRESH(f, t, n, tk, sc, fl, r)                                                            \
	{                                                                                          \
		.from = PROTO_STATE_##f, .event = EV_REFRESH, .to = PROTO_STATE_##t, .logins = n,  \
		.token = TK_##tk, .sched = SC_##sc, .flags = fl, .rc = r                           \
	}
/* "—": no change at all. */
#define SAME(f, e, fl)     CELL(f, e, f, 0, UNCHANGED, SAME, F_NOCHANGE | (fl))
#define SAME_REFRESH(f, r) REFRESH(f, f, 0, UNCHANGED, SAME, F_NOCHANGE, r)

/* daemon/LIFECYCLE.md, "Transitions", row by row. logins counts identity logins only: the
 * client login events start their own login in the candidate slot, which is the event. */
static const struct row rows[] = {
		/* configure: new account (bob at another URL) */
		CELL(NO_TOKEN, CONF_ACCOUNT, LOGGING_IN, 1, NONE, ANY, 0),
		CELL(LOGGING_IN, CONF_ACCOUNT, LOGGING_IN, 1, NONE, ANY, F_CANCEL),
		CELL(VALID, CONF_ACCOUNT, LOGGING_IN, 1, DROPPED, ANY, 0),
		CELL(REFRESHING, CONF_ACCOUNT, LOGGING_IN, 1, DROPPED, ANY, 0),
		CELL(RETRYING, CONF_ACCOUNT, LOGGING_IN, 1, NONE, ANY, 0),
		CELL(EXPIRED, CONF_ACCOUNT, LOGGING_IN, 1, DROPPED, ANY, 0),
		CELL(CREDENTIALS_REJECTED, CONF_ACCOUNT, LOGGING_IN, 1, NONE, ANY, 0),
		CELL(LOGIN_REQUIRED, CONF_ACCOUNT, LOGGING_IN, 1, DROPPED, ANY, 0),
		/* configure: new password (alice, same URL) */
		CELL(NO_TOKEN, CONF_PASSWORD, LOGGING_IN, 1, NONE, ANY, 0),
		CELL(LOGGING_IN, CONF_PASSWORD, LOGGING_IN, 1, NONE, ANY, F_CANCEL),
		CELL(VALID, CONF_PASSWORD, REFRESHING, 1, KEPT, ANY, 0),
		CELL(REFRESHING, CONF_PASSWORD, REFRESHING, 1, KEPT, ANY, F_CANCEL),
		CELL(RETRYING, CONF_PASSWORD, LOGGING_IN, 1, NONE, ANY, 0),
		CELL(EXPIRED, CONF_PASSWORD, LOGGING_IN, 1, DROPPED, ANY, 0),
		CELL(CREDENTIALS_REJECTED, CONF_PASSWORD, LOGGING_IN, 1, NONE, ANY, 0),
		CELL(LOGIN_REQUIRED, CONF_PASSWORD, LOGGING_IN, 1, DROPPED, ANY, 0),
		/* configure: unchanged */
		SAME(NO_TOKEN, CONF_UNCHANGED, 0),
		SAME(LOGGING_IN, CONF_UNCHANGED, 0),
		SAME(VALID, CONF_UNCHANGED, 0),
		SAME(REFRESHING, CONF_UNCHANGED, 0),
		SAME(RETRYING, CONF_UNCHANGED, 0),
		SAME(EXPIRED, CONF_UNCHANGED, 0),
		SAME(CREDENTIALS_REJECTED, CONF_UNCHANGED, 0),
		SAME(LOGIN_REQUIRED, CONF_UNCHANGED, 0),
		/* configure: invalid or empty: no event reaches the lifecycle (see
		 * ev_conf_invalid()), so every cell is "nothing changes" */
		SAME(NO_TOKEN, CONF_INVALID, 0),
		SAME(LOGGING_IN, CONF_INVALID, 0),
		SAME(VALID, CONF_INVALID, 0),
		SAME(REFRESHING, CONF_INVALID, 0),
		SAME(RETRYING, CONF_INVALID, 0),
		SAME(EXPIRED, CONF_INVALID, 0),
		SAME(CREDENTIALS_REJECTED, CONF_INVALID, 0),
		SAME(LOGIN_REQUIRED, CONF_INVALID, 0),
		/* login ok */
		SAME(NO_TOKEN, LOGIN_OK, 0),
		CELL(LOGGING_IN, LOGIN_OK, VALID, 0, NEW, SET, 0),
		SAME(VALID, LOGIN_OK, 0),
		CELL(REFRESHING, LOGIN_OK, VALID, 0, NEW, SET, 0),
		SAME(RETRYING, LOGIN_OK, 0),
		SAME(EXPIRED, LOGIN_OK, 0),
		SAME(CREDENTIALS_REJECTED, LOGIN_OK, 0),
		SAME(LOGIN_REQUIRED, LOGIN_OK, 0),
		/* passing failure */
		SAME(NO_TOKEN, PASSING, 0),
		CELL(LOGGING_IN, PASSING, RETRYING, 0, NONE, SET, 0),
		SAME(VALID, PASSING, 0),
		CELL(REFRESHING, PASSING, RETRYING, 0, KEPT, SET, 0),
		SAME(RETRYING, PASSING, 0),
		SAME(EXPIRED, PASSING, 0),
		SAME(CREDENTIALS_REJECTED, PASSING, 0),
		SAME(LOGIN_REQUIRED, PASSING, 0),
		/* rejected */
		SAME(NO_TOKEN, REJECTED, 0),
		CELL(LOGGING_IN, REJECTED, CREDENTIALS_REJECTED, 0, NONE, NONE, 0),
		SAME(VALID, REJECTED, 0),
		CELL(REFRESHING, REJECTED, CREDENTIALS_REJECTED, 0, KEPT, NONE, F_SERVED),
		SAME(RETRYING, REJECTED, 0),
		SAME(EXPIRED, REJECTED, 0),
		SAME(CREDENTIALS_REJECTED, REJECTED, 0),
		SAME(LOGIN_REQUIRED, REJECTED, 0),
		/* impossible */
		SAME(NO_TOKEN, IMPOSSIBLE, 0),
		CELL(LOGGING_IN, IMPOSSIBLE, NO_TOKEN, 0, NONE, NONE, 0),
		SAME(VALID, IMPOSSIBLE, 0),
		CELL(REFRESHING, IMPOSSIBLE, VALID, 0, KEPT, NONE, 0),
		SAME(RETRYING, IMPOSSIBLE, 0),
		SAME(EXPIRED, IMPOSSIBLE, 0),
		SAME(CREDENTIALS_REJECTED, IMPOSSIBLE, 0),
		SAME(LOGIN_REQUIRED, IMPOSSIBLE, 0),
		/* timer due */
		SAME(NO_TOKEN, TIMER, 0),
		SAME(LOGGING_IN, TIMER, 0),
		CELL(VALID, TIMER, REFRESHING, 1, KEPT, ANY, 0),
		SAME(REFRESHING, TIMER, 0),
		CELL(RETRYING, TIMER, LOGGING_IN, 1, NONE, ANY, 0),
		SAME(EXPIRED, TIMER, 0),
		SAME(CREDENTIALS_REJECTED, TIMER, 0),
		SAME(LOGIN_REQUIRED, TIMER, 0),
		/* token expired */
		SAME(NO_TOKEN, EXPIRED, 0),
		SAME(LOGGING_IN, EXPIRED, 0),
		CELL(VALID, EXPIRED, LOGGING_IN, 1, KEPT, ANY, F_NOT_SERVED),
		CELL(REFRESHING, EXPIRED, LOGGING_IN, 0, KEPT, ANY, F_NOT_SERVED),
		CELL(RETRYING, EXPIRED, LOGGING_IN, 1, NONE, ANY, 0),
		SAME(EXPIRED, EXPIRED, 0),
		SAME(CREDENTIALS_REJECTED, EXPIRED, 0),
		CELL(LOGIN_REQUIRED, EXPIRED, EXPIRED, 0, KEPT, ANY, F_NOT_SERVED),
		/* client login ok */
		CELL(NO_TOKEN, CLIENT_OK, VALID, 0, NEW, SET, 0),
		CELL(LOGGING_IN, CLIENT_OK, VALID, 0, NEW, SET, F_CANCEL),
		CELL(VALID, CLIENT_OK, VALID, 0, NEW, SET, 0),
		CELL(REFRESHING, CLIENT_OK, VALID, 0, NEW, SET, F_CANCEL),
		CELL(RETRYING, CLIENT_OK, VALID, 0, NEW, SET, 0),
		CELL(EXPIRED, CLIENT_OK, VALID, 0, NEW, SET, 0),
		CELL(CREDENTIALS_REJECTED, CLIENT_OK, VALID, 0, NEW, SET, 0),
		CELL(LOGIN_REQUIRED, CLIENT_OK, VALID, 0, NEW, SET, 0),
		/* client login failed */
		CELL(NO_TOKEN, CLIENT_FAILED, CREDENTIALS_REJECTED, 0, NONE, ANY, F_CAROL),
		SAME(LOGGING_IN, CLIENT_FAILED, 0),
		SAME(VALID, CLIENT_FAILED, 0),
		SAME(REFRESHING, CLIENT_FAILED, 0),
		SAME(RETRYING, CLIENT_FAILED, 0),
		CELL(EXPIRED, CLIENT_FAILED, CREDENTIALS_REJECTED, 0, DROPPED, ANY, F_CAROL),
		CELL(CREDENTIALS_REJECTED, CLIENT_FAILED, CREDENTIALS_REJECTED, 0, NONE, ANY,
				F_CAROL),
		SAME(LOGIN_REQUIRED, CLIENT_FAILED, 0),
		/* client MFA login ok */
		CELL(NO_TOKEN, CLIENT_MFA, LOGIN_REQUIRED, 0, NEW, NONE, 0),
		CELL(LOGGING_IN, CLIENT_MFA, LOGIN_REQUIRED, 0, NEW, ANY, 0),
		CELL(VALID, CLIENT_MFA, LOGIN_REQUIRED, 0, NEW, ANY, 0),
		CELL(REFRESHING, CLIENT_MFA, LOGIN_REQUIRED, 0, NEW, ANY, 0),
		CELL(RETRYING, CLIENT_MFA, LOGIN_REQUIRED, 0, NEW, ANY, 0),
		CELL(EXPIRED, CLIENT_MFA, LOGIN_REQUIRED, 0, NEW, ANY, 0),
		CELL(CREDENTIALS_REJECTED, CLIENT_MFA, LOGIN_REQUIRED, 0, NEW, ANY, 0),
		CELL(LOGIN_REQUIRED, CLIENT_MFA, LOGIN_REQUIRED, 0, NEW, ANY, 0),
		/* client paste accepted: whatever was held before, the pasted token is served */
		CELL(NO_TOKEN, PASTE_OK, VALID, 0, NEW, NONE, F_PASTED),
		CELL(LOGGING_IN, PASTE_OK, VALID, 0, NEW, NONE, F_PASTED | F_CANCEL),
		CELL(VALID, PASTE_OK, VALID, 0, NEW, NONE, F_PASTED),
		CELL(REFRESHING, PASTE_OK, VALID, 0, NEW, NONE, F_PASTED | F_CANCEL),
		CELL(RETRYING, PASTE_OK, VALID, 0, NEW, NONE, F_PASTED),
		CELL(EXPIRED, PASTE_OK, VALID, 0, NEW, NONE, F_PASTED),
		CELL(CREDENTIALS_REJECTED, PASTE_OK, VALID, 0, NEW, NONE, F_PASTED),
		CELL(LOGIN_REQUIRED, PASTE_OK, VALID, 0, NEW, NONE, F_PASTED),
		/* client paste refused: nothing changes, in every state */
		SAME(NO_TOKEN, PASTE_REFUSED, 0),
		SAME(LOGGING_IN, PASTE_REFUSED, 0),
		SAME(VALID, PASTE_REFUSED, 0),
		SAME(REFRESHING, PASTE_REFUSED, 0),
		SAME(RETRYING, PASTE_REFUSED, 0),
		SAME(EXPIRED, PASTE_REFUSED, 0),
		SAME(CREDENTIALS_REJECTED, PASTE_REFUSED, 0),
		SAME(LOGIN_REQUIRED, PASTE_REFUSED, 0),
		/* logout */
		CELL(NO_TOKEN, LOGOUT, NO_TOKEN, 0, NONE, ANY, 0),
		CELL(LOGGING_IN, LOGOUT, NO_TOKEN, 0, NONE, ANY, F_CANCEL),
		CELL(VALID, LOGOUT, NO_TOKEN, 0, DROPPED, ANY, 0),
		CELL(REFRESHING, LOGOUT, NO_TOKEN, 0, DROPPED, ANY, F_CANCEL),
		CELL(RETRYING, LOGOUT, NO_TOKEN, 0, NONE, NONE, 0),
		CELL(EXPIRED, LOGOUT, NO_TOKEN, 0, DROPPED, ANY, 0),
		CELL(CREDENTIALS_REJECTED, LOGOUT, NO_TOKEN, 0, NONE, ANY, 0),
		CELL(LOGIN_REQUIRED, LOGOUT, NO_TOKEN, 0, DROPPED, ANY, 0),
		/* client refresh */
		SAME_REFRESH(NO_TOKEN, -ENOKEY),
		SAME_REFRESH(LOGGING_IN, 0), /* joins */
		REFRESH(VALID, REFRESHING, 1, KEPT, ANY, 0, 0),
		SAME_REFRESH(REFRESHING, 0), /* joins */
		REFRESH(RETRYING, LOGGING_IN, 1, NONE, ANY, 0, 0),
		SAME_REFRESH(EXPIRED, -EPERM),
		SAME_REFRESH(CREDENTIALS_REJECTED, -EKEYREJECTED),
		SAME_REFRESH(LOGIN_REQUIRED, -EPERM),
		/* token file changed */
		CELL(NO_TOKEN, TOKEN_FILE, VALID, 0, NEW, NONE, F_SERVICE),
		CELL(LOGGING_IN, TOKEN_FILE, VALID, 0, NEW, ANY, F_SERVICE | F_CANCEL),
		CELL(VALID, TOKEN_FILE, VALID, 0, NEW, NONE, F_SERVICE),
		CELL(REFRESHING, TOKEN_FILE, VALID, 0, NEW, NONE, F_SERVICE | F_CANCEL),
		CELL(RETRYING, TOKEN_FILE, VALID, 0, NEW, NONE, F_SERVICE),
		CELL(EXPIRED, TOKEN_FILE, VALID, 0, NEW, ANY, F_SERVICE),
		CELL(CREDENTIALS_REJECTED, TOKEN_FILE, VALID, 0, NEW, ANY, F_SERVICE),
		CELL(LOGIN_REQUIRED, TOKEN_FILE, VALID, 0, NEW, ANY, F_SERVICE),
		/* clock forward */
		SAME(NO_TOKEN, CLOCK_FWD, 0),
		SAME(LOGGING_IN, CLOCK_FWD, 0),
		CELL(VALID, CLOCK_FWD, REFRESHING, 1, KEPT, ANY, 0),
		SAME(REFRESHING, CLOCK_FWD, 0),
		SAME(RETRYING, CLOCK_FWD, 0),
		SAME(EXPIRED, CLOCK_FWD, 0),
		SAME(CREDENTIALS_REJECTED, CLOCK_FWD, 0),
		SAME(LOGIN_REQUIRED, CLOCK_FWD, F_SERVED), /* still valid */
		/* clock back */
		SAME(NO_TOKEN, CLOCK_BACK, 0),
		SAME(LOGGING_IN, CLOCK_BACK, 0),
		SAME(VALID, CLOCK_BACK, F_SERVED), /* the token still ends on boottime */
		SAME(REFRESHING, CLOCK_BACK, 0),
		SAME(RETRYING, CLOCK_BACK, 0),
		SAME(EXPIRED, CLOCK_BACK, 0),
		SAME(CREDENTIALS_REJECTED, CLOCK_BACK, 0),
		SAME(LOGIN_REQUIRED, CLOCK_BACK, 0),
		/* reloaded */
		SAME(NO_TOKEN, RELOADED, 0),
		SAME(LOGGING_IN, RELOADED, 0),
		SAME(VALID, RELOADED, 0),
		SAME(REFRESHING, RELOADED, 0),
		SAME(RETRYING, RELOADED, 0), /* its error stands */
		SAME(EXPIRED, RELOADED, 0),
		SAME(CREDENTIALS_REJECTED, RELOADED, 0), /* its error stands */
		SAME(LOGIN_REQUIRED, RELOADED, 0),
};

#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

static void mismatch(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports one way the cell disagrees with the table; the cell fails once all are told. */
static void mismatch(struct world *w, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	print_error("%s / %s: %s\n", proto_state_name(w->row->from), event_names[w->row->event],
			buf);
	w->bad++;
}

static bool same_secret(const struct secret *a, const struct secret *b)
{
	return a && b && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static struct secret *open_token(const struct world *w)
{
	struct secret *s = NULL;
	int r = lifecycle_open_token(w->lc, &s);

	if (r == -ENOENT)
		return NULL;
	assert_int_equal(r, 0);
	return s;
}

/* The boottime a schedule shown as next_refresh (wall) at now stands for, 0 when none. */
static int64_t sched_boot(const struct lc_info *info, const struct lc_time *now)
{
	if (!info->next_refresh)
		return 0;
	return (int64_t)now->boot + (info->next_refresh - now->wall) * (int64_t)USEC;
}

static const char *token_seen(const struct secret *before, const struct secret *after)
{
	if (!before && !after)
		return "none";
	if (!after)
		return "dropped";
	if (!before)
		return "new (none before)";
	return same_secret(before, after) ? "kept" : "new";
}

static void run_cell(void **state)
{
	struct world *w = *state;
	const struct row *r = w->row;
	struct lc_info info;
	struct lc_time then;
	int64_t sched_before, sched_after;
	bool had, has, same, sched_moved;
	enum proto_state got;
	unsigned cancels;

	reach(w, r->from);
	lifecycle_info(w->lc, &w->now, &info);
	then = w->now;
	sched_before = sched_boot(&info, &w->now);
	w->error_before = strdup(info.last_error);
	assert_non_null(w->error_before);
	w->before = open_token(w);

	events[r->event](w);

	/* state */
	got = state_of(w);
	if (got != r->to)
		mismatch(w, "state is %s, the table says %s", proto_state_name(got),
				proto_state_name(r->to));

	/* logins */
	if (w->fk.starts[LC_SLOT_IDENTITY] != r->logins)
		mismatch(w, "%u identity logins started, the table says %u",
				w->fk.starts[LC_SLOT_IDENTITY], r->logins);
	cancels = w->fk.cancels[LC_SLOT_IDENTITY] + w->fk.cancels[LC_SLOT_CANDIDATE];
	if ((r->flags & F_CANCEL) && cancels == 0)
		mismatch(w, "no login cancelled, the table says one is");
	if ((r->flags & F_NOCHANGE) && cancels != 0)
		mismatch(w, "%u logins cancelled, the table says no change", cancels);

	/* token */
	w->after = open_token(w);
	had = w->before != NULL;
	has = w->after != NULL;
	same = same_secret(w->before, w->after);
	switch (r->token) {
	case TK_KEPT:
		if (!had || !same)
			mismatch(w, "token %s, the table says kept",
					token_seen(w->before, w->after));
		break;
	case TK_NEW:
		if (!has || same)
			mismatch(w, "token %s, the table says new",
					token_seen(w->before, w->after));
		break;
	case TK_DROPPED:
		if (!had || has)
			mismatch(w, "token %s, the table says dropped",
					token_seen(w->before, w->after));
		break;
	case TK_NONE:
		if (had || has)
			mismatch(w, "token %s, the table says none",
					token_seen(w->before, w->after));
		break;
	case TK_UNCHANGED:
		if (had ? !same : has)
			mismatch(w, "token %s, the table says no change",
					token_seen(w->before, w->after));
		break;
	}

	/* schedule */
	lifecycle_info(w->lc, &w->now, &info);
	sched_after = sched_boot(&info, &w->now);
	sched_moved = (sched_before == 0) != (sched_after == 0) ||
		      llabs(sched_after - sched_before) > (long long)USEC;
	switch (r->sched) {
	case SC_ANY:
		break;
	case SC_NONE:
		if (info.next_refresh)
			mismatch(w, "a login is scheduled (in %llds), the table says none",
					(long long)(info.next_refresh - w->now.wall));
		break;
	case SC_SET:
		if (!info.next_refresh)
			mismatch(w, "no login is scheduled, the table says one is");
		break;
	case SC_SAME:
		if (sched_moved)
			mismatch(w,
					"the schedule moved (boottime %+.3fs -> %+.3fs from the "
					"event), the table says no change",
					sched_before ? (double)(sched_before - (int64_t)then.boot) /
									1e6
						     : 0.0,
					sched_after ? (double)(sched_after - (int64_t)then.boot) /
									1e6
						    : 0.0);
		break;
	}

	if ((r->flags & F_NOCHANGE) && strcmp(info.last_error, w->error_before) != 0)
		mismatch(w, "last_error \"%s\" became \"%s\", the table says no change",
				w->error_before, info.last_error);
	if ((r->flags & F_CAROL) && (!info.username || strcmp(info.username, "carol") != 0))
		mismatch(w, "the identity is \"%s\", the table says carol (the client login)",
				info.username ? info.username : "(none)");
	if ((r->flags & F_SERVICE) && (!info.service || info.origin != LC_ORIGIN_SERVICE))
		mismatch(w, "the token is no service token");
	if ((r->flags & F_PASTED) &&
			(info.origin != LC_ORIGIN_PASTED || !info.kind ||
					strcmp(info.kind, PROTO_KIND_PASTED) != 0 ||
					!info.needs_person ||
					lifecycle_next_wakeup(w->lc, &w->now) != token_end(w)))
		mismatch(w, "the token is not a pasted one that only its end wakes up for");

	/* the return code of a client refresh, and that a login runs for its ticket */
	if (r->rc != RC_NONE) {
		if (w->rc != r->rc)
			mismatch(w, "lifecycle_refresh() returned %d (%s), the table says %d (%s)",
					w->rc, strerror(w->rc < 0 ? -w->rc : 0), r->rc,
					strerror(r->rc < 0 ? -r->rc : 0));
		else if (r->rc == 0) {
			enum proto_error err;
			char msg[256];
			if (lifecycle_ticket(w->lc, w->ticket, &err, msg, sizeof(msg)) != 0)
				mismatch(w, "the refresh's ticket has no login running");
		}
	}

	/* Whatever changed was told. */
	if (w->fk.changed == 0 && (got != r->from || had != has || (had && !same) || sched_moved))
		mismatch(w, "state, token or schedule changed without the changed hook");

	/* Last, as a get ticks the lifecycle. */
	if (r->flags & (F_SERVED | F_NOT_SERVED)) {
		enum proto_error err = PROTO_OK;
		char msg[512];
		enum lc_get g = lifecycle_get(
				w->lc, 0, false, false, &w->now, &err, msg, sizeof(msg));
		if ((r->flags & F_SERVED) && g != LC_GET_SERVE)
			mismatch(w, "a get is not served (%s: %s), the table says it is",
					proto_error_name(err), msg);
		if ((r->flags & F_NOT_SERVED) && g == LC_GET_SERVE)
			mismatch(w, "a get is served the token, the table says it is not");
	}

	if (w->bad)
		fail_msg("%u disagreements with daemon/LIFECYCLE.md", w->bad);
}

/* Every (state, event) pair has exactly one row. */
static void test_table_complete(void **state)
{
	unsigned seen[_PROTO_STATE_MAX][_EV_MAX] = {{0}};

	for (size_t i = 0; i < N_ROWS; i++)
		seen[rows[i].from][rows[i].event]++;
	for (int s = 0; s < _PROTO_STATE_MAX; s++)
		for (int e = 0; e < _EV_MAX; e++)
			if (seen[s][e] != 1)
				fail_msg("%s / %s: %u rows", proto_state_name((enum proto_state)s),
						event_names[e], seen[s][e]);
	assert_int_equal(N_ROWS, _PROTO_STATE_MAX * _EV_MAX);
}

/* The setups reach what LIFECYCLE.md describes, not only the state's name. */
static void test_setups(void **state)
{
	static const struct {
		enum proto_state s;
		bool token;
		bool sched;
		bool in_flight;
		const char *username;
	} cases[] = {
			{PROTO_STATE_NO_TOKEN, false, false, false, NULL},
			{PROTO_STATE_LOGGING_IN, false, false, true, "alice"},
			{PROTO_STATE_VALID, true, true, false, "alice"},
			{PROTO_STATE_REFRESHING, true, false, true, "alice"},
			{PROTO_STATE_RETRYING, false, true, false, "alice"},
			{PROTO_STATE_EXPIRED, true, false, false, "carol"},
			{PROTO_STATE_CREDENTIALS_REJECTED, false, false, false, "alice"},
			{PROTO_STATE_LOGIN_REQUIRED, true, false, false, "carol"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct world *w = world_new();
		struct lc_info info;

		reach(w, cases[i].s);
		lifecycle_info(w->lc, &w->now, &info);
		assert_int_equal(info.state, cases[i].s);
		assert_int_equal(info.has_token, cases[i].token);
		assert_int_equal(info.next_refresh != 0, cases[i].sched);
		assert_int_equal(info.login_in_flight, cases[i].in_flight);
		if (cases[i].username)
			assert_string_equal(info.username, cases[i].username);
		else
			assert_null(info.username);
		world_free(w);
	}
}

/* ---- backoff ---- */

/* Successive passing failures: retries after 1, 2, 4... s (± 20 %), 5 min at most. */
static void test_backoff(void **state)
{
	static const double base[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300, 300};
	struct world *w = *state;

	to_logging_in(w);
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		struct lc_info info;
		uint64_t at;
		double delay;

		advance(w, 3 * USEC); /* the login took a while */
		deliver(w, LC_SLOT_IDENTITY, HELPER_TRANSIENT, -1, NULL);
		lifecycle_info(w->lc, &w->now, &info);
		assert_int_equal(info.state, PROTO_STATE_RETRYING);
		assert_int_equal(info.retries, i + 1);
		assert_true(info.next_refresh != 0);
		at = lifecycle_next_wakeup(w->lc, &w->now);
		assert_true(at > w->now.boot && at != UINT64_MAX);
		delay = (double)(at - w->now.boot) / 1e6;
		if (delay < base[i] * 0.8 - 1e-3 || delay > base[i] * 1.2 + 1e-3)
			fail_msg("failure %zu: retry in %.3fs, not %.0fs +- 20%%", i + 1, delay,
					base[i]);

		/* Nothing before it is due; the retry at it. */
		fake_reset(&w->fk);
		lifecycle_tick(w->lc, &(struct lc_time){.wall = w->now.wall, .boot = at - 1});
		assert_int_equal(w->fk.starts[LC_SLOT_IDENTITY], 0);
		set_boot(w, at);
		lifecycle_tick(w->lc, &w->now);
		assert_int_equal(w->fk.starts[LC_SLOT_IDENTITY], 1);
		assert_int_equal(state_of(w), PROTO_STATE_LOGGING_IN);
	}

	/* A success resets the backoff. */
	deliver_ok(w, LC_SLOT_IDENTITY);
	assert_int_equal(state_of(w), PROTO_STATE_VALID);
	set_boot(w, lifecycle_next_wakeup(w->lc, &w->now));
	lifecycle_tick(w->lc, &w->now);
	deliver(w, LC_SLOT_IDENTITY, HELPER_TRANSIENT, -1, NULL);
	{
		uint64_t at = lifecycle_next_wakeup(w->lc, &w->now);
		assert_true(at - w->now.boot <= (uint64_t)(1.2 * 1e6) + 1000);
	}
}

/* Retry-After: honoured when longer than the backoff, never past the token's end. */
static void test_retry_after(void **state)
{
	static const struct {
		const char *name;
		unsigned failures_before; /* passing failures before the one with Retry-After */
		int64_t retry_after;
		bool token; /* a valid token is served meanwhile, ending in token_left s */
		int64_t token_left;
		double lo, hi; /* seconds from the failure to the retry */
	} cases[] = {
			{"Retry-After 120 beats 1s", 0, 120, false, 0, 120, 121},
			{"Retry-After 120 beats 8s", 3, 120, false, 0, 120, 121},
			{"backoff 256s beats Retry-After 120", 8, 120, false, 0, 256 * 0.8,
					256 * 1.2},
			{"Retry-After 0 is none", 0, 0, false, 0, 0.8, 1.2},
			{"Retry-After 120 stops at the token's end", 0, 120, true, 50, 0, 50},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct world *w = world_new();
		uint64_t at, end = 0;
		double delay;

		if (cases[i].token) {
			to_refreshing(w);
			end = token_end(w);
			/* The refresh is still running token_left s before the end. */
			set_boot(w, end - (uint64_t)cases[i].token_left * USEC);
		} else
			to_logging_in(w);
		for (unsigned k = 0; k < cases[i].failures_before; k++) {
			deliver(w, LC_SLOT_IDENTITY, HELPER_TRANSIENT, -1, NULL);
			set_boot(w, lifecycle_next_wakeup(w->lc, &w->now));
			lifecycle_tick(w->lc, &w->now);
			assert_int_equal(state_of(w), PROTO_STATE_LOGGING_IN);
		}
		deliver(w, LC_SLOT_IDENTITY, HELPER_TRANSIENT, cases[i].retry_after, NULL);
		assert_int_equal(state_of(w), PROTO_STATE_RETRYING);
		at = lifecycle_next_wakeup(w->lc, &w->now);
		delay = (double)(at - w->now.boot) / 1e6;
		if (delay < cases[i].lo - 1e-3 || delay > cases[i].hi + 1e-3)
			fail_msg("%s: retry in %.3fs, not in [%.1f, %.1f]", cases[i].name, delay,
					cases[i].lo, cases[i].hi);
		if (cases[i].token && at > end)
			fail_msg("%s: retry %.3fs past the token's end", cases[i].name,
					(double)(at - end) / 1e6);
		world_free(w);
	}
}

/* ---- the token's end ---- */

/* The end is the earlier of exp on the wall clock and login start + (exp - iat) on
 * boottime. Offsets are seconds from the login's start (boot T, wall W). */
static void test_token_end(void **state)
{
	static const struct {
		const char *name;
		int64_t answer_after; /* the answer arrives this long after the start */
		int64_t iat, exp;     /* claims, from W */
		int64_t jump;         /* the wall clock is then set this far */
		int64_t end;          /* expected end, from T on boottime */
	} cases[] = {
			{"answer 10 s after the start", 10, 10, 3610, 0, 3600},
			{"answer at once", 0, 0, 3600, 0, 3600},
			{"server clock 1 h ahead", 0, 3600, 7200, 0, 3600},
			{"server clock 1 h ahead, answer 10 s late", 10, 3610, 7210, 0, 3600},
			{"server clock 30 min behind: exp bounds it", 0, -1800, 1800, 0, 1800},
			{"server clock 30 min behind, answer 10 s late", 10, -1790, 1810, 0, 1810},
			{"wall clock set back 1 h after", 0, 0, 3600, -3600, 3600},
			{"wall clock set forward 30 min after", 0, 0, 3600, 1800, 1800},
			{"server clock 1 h ahead, wall set forward 90 min", 0, 3600, 7200, 5400,
					1800},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct world *w = world_new();
		uint64_t t0, end;
		int64_t w0, expect_wall;
		struct lc_info info;
		enum proto_error err;
		char msg[512];
		char *tok;

		to_logging_in(w);
		t0 = w->now.boot;
		w0 = w->now.wall;
		advance(w, (uint64_t)cases[i].answer_after * USEC);
		tok = mint(w, true, w0 + cases[i].iat, w0 + cases[i].exp, "u-end");
		deliver(w, LC_SLOT_IDENTITY, HELPER_OK, -1, tok);
		free(tok);
		assert_int_equal(state_of(w), PROTO_STATE_VALID);
		if (cases[i].jump) {
			jump_wall(w, cases[i].jump);
			lifecycle_clock_jumped(w->lc, &w->now);
		}
		end = t0 + (uint64_t)cases[i].end * USEC;

		/* What clients are told. */
		lifecycle_info(w->lc, &w->now, &info);
		expect_wall = w->now.wall + (int64_t)((end - w->now.boot) / USEC);
		if (info.expires_at != expect_wall)
			fail_msg("%s: expires_at is T%+llds, not T%+llds", cases[i].name,
					(long long)(info.expires_at - w->now.wall +
							(int64_t)((w->now.boot - t0) / USEC)),
					(long long)cases[i].end);

		/* Served until then, not at it. */
		set_boot(w, end - USEC);
		if (lifecycle_get(w->lc, 0, false, false, &w->now, &err, msg, sizeof(msg)) !=
				LC_GET_SERVE)
			fail_msg("%s: not served 1 s before the end: %s", cases[i].name, msg);
		set_boot(w, end);
		if (lifecycle_get(w->lc, 0, false, false, &w->now, &err, msg, sizeof(msg)) ==
				LC_GET_SERVE)
			fail_msg("%s: still served at the end", cases[i].name);
		world_free(w);
	}
}

/* ---- get decisions ---- */

enum get_pre {
	PRE_NONE,
	PRE_SERVICE, /* a service token valid for an hour replaces everything */
	PRE_PROBE,   /* a get with min_valid 7200 started a login that brought 3600 s */
};

static void test_get(void **state)
{
	static const struct {
		const char *name;
		enum proto_state s;
		enum get_pre pre;
		int64_t min_valid;
		bool may_wait, may_start;
		enum lc_get expect;
		enum proto_error err; /* on LC_GET_FAIL */
		unsigned logins;      /* identity logins the get starts */
	} cases[] = {
			{"valid serves", PROTO_STATE_VALID, PRE_NONE, 0, true, true, LC_GET_SERVE,
					PROTO_OK, 0},
			{"valid serves min_valid 600", PROTO_STATE_VALID, PRE_NONE, 600, true, true,
					LC_GET_SERVE, PROTO_OK, 0},
			{"refreshing serves", PROTO_STATE_REFRESHING, PRE_NONE, 0, true, true,
					LC_GET_SERVE, PROTO_OK, 0},
			{"first login: wait", PROTO_STATE_LOGGING_IN, PRE_NONE, 0, true, true,
					LC_GET_WAIT, PROTO_OK, 0},
			{"first login, no wait: no token", PROTO_STATE_LOGGING_IN, PRE_NONE, 0,
					false, false, LC_GET_FAIL, PROTO_E_NO_TOKEN, 0},
			{"no token", PROTO_STATE_NO_TOKEN, PRE_NONE, 0, true, true, LC_GET_FAIL,
					PROTO_E_NO_TOKEN, 0},
			{"rejected", PROTO_STATE_CREDENTIALS_REJECTED, PRE_NONE, 0, true, true,
					LC_GET_FAIL, PROTO_E_CREDENTIALS_REJECTED, 0},
			{"expired", PROTO_STATE_EXPIRED, PRE_NONE, 0, true, true, LC_GET_FAIL,
					PROTO_E_TOKEN_EXPIRED, 0},
			{"min_valid beyond: refresh and wait", PROTO_STATE_VALID, PRE_NONE, 7200,
					true, true, LC_GET_WAIT, PROTO_OK, 1},
			{"min_valid beyond, MFA: login_required", PROTO_STATE_LOGIN_REQUIRED,
					PRE_NONE, 7200, true, true, LC_GET_FAIL,
					PROTO_E_LOGIN_REQUIRED, 0},
			{"min_valid beyond, service: token_expired", PROTO_STATE_VALID, PRE_SERVICE,
					7200, true, true, LC_GET_FAIL, PROTO_E_TOKEN_EXPIRED, 0},
			{"min_valid beyond what a login gave: token_expired", PROTO_STATE_VALID,
					PRE_PROBE, 7200, true, true, LC_GET_FAIL,
					PROTO_E_TOKEN_EXPIRED, 0},
			{"a little beyond what a login gave: token_expired", PROTO_STATE_VALID,
					PRE_PROBE, 3700, true, true, LC_GET_FAIL,
					PROTO_E_TOKEN_EXPIRED, 0},
			{"within what a login gave: serve", PROTO_STATE_VALID, PRE_PROBE, 3000,
					true, true, LC_GET_SERVE, PROTO_OK, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct world *w = world_new();
		enum proto_error err = PROTO_OK;
		char msg[512] = "";
		enum lc_get g;

		reach(w, cases[i].s);
		if (cases[i].pre == PRE_SERVICE) {
			const char *why = NULL;
			char *t = mint(w, true, w->now.wall, w->now.wall + 3600, "u-service");
			assert_int_equal(lifecycle_set_service_token(
							 w->lc, t, strlen(t), &w->now, &why),
					0);
			free(t);
		} else if (cases[i].pre == PRE_PROBE) {
			assert_int_equal(lifecycle_get(w->lc, 7200, true, true, &w->now, &err, msg,
							 sizeof(msg)),
					LC_GET_WAIT);
			assert_int_equal(w->fk.starts[LC_SLOT_IDENTITY], 1);
			advance(w, 2 * USEC);
			deliver_ok(w, LC_SLOT_IDENTITY); /* 3600 s, less than asked */
			assert_int_equal(state_of(w), PROTO_STATE_VALID);
			advance(w, USEC);
		}
		fake_reset(&w->fk);
		g = lifecycle_get(w->lc, cases[i].min_valid, cases[i].may_wait, cases[i].may_start,
				&w->now, &err, msg, sizeof(msg));
		if (g != cases[i].expect)
			fail_msg("%s: decision %d, not %d (%s: %s)", cases[i].name, (int)g,
					(int)cases[i].expect, proto_error_name(err), msg);
		if (g == LC_GET_FAIL && err != cases[i].err)
			fail_msg("%s: %s, not %s (%s)", cases[i].name, proto_error_name(err),
					proto_error_name(cases[i].err), msg);
		if (w->fk.starts[LC_SLOT_IDENTITY] != cases[i].logins)
			fail_msg("%s: %u logins started, not %u", cases[i].name,
					w->fk.starts[LC_SLOT_IDENTITY], cases[i].logins);
		world_free(w);
	}
}

/* ---- expiry warnings and the status line ---- */

/* Asserts that the status line at w's now holds want (and, when not NULL, not unwanted), and
 * never a relative time ("in 5m"): it must stay true while nothing happens. */
static void assert_status(struct world *w, const char *want, const char *unwanted)
{
	char line[512];

	lifecycle_status_line(w->lc, &w->now, line, sizeof(line));
	if (!strstr(line, want))
		fail_msg("status line '%s' lacks '%s'", line, want);
	if (unwanted && strstr(line, unwanted))
		fail_msg("status line '%s' has '%s'", line, unwanted);
	for (const char *p = line; (p = strstr(p, " in ")); p++)
		if (p[4] >= '0' && p[4] <= '9')
			fail_msg("status line '%s' says a relative time", line);
}

/* A service token with exp at wall + left, loaded now. */
static void load_service(struct world *w, int64_t left)
{
	char *t = mint(w, true, w->now.wall, w->now.wall + left, "svc-warn");
	const char *why = NULL;

	assert_int_equal(lifecycle_set_service_token(w->lc, t, strlen(t), &w->now, &why), 0);
	free(t);
}

static void test_warn_points(void **state)
{
	struct expiry_points p = {0};
	struct world *w = world_new();
	int64_t exp;
	char iso[32], want[128];

	/* Default points; a token arriving with 2 days left is past 30d and 7d. */
	load_service(w, 2 * 86400);
	exp = w->now.wall + 2 * 86400;
	assert_int_equal(lifecycle_warn(w->lc, &w->now), exp - 86400);
	snprintf(want, sizeof(want), "valid until %s (under 7d left)",
			proto_format_time(exp, iso, sizeof(iso)));
	assert_status(w, want, NULL);
	assert_status(w, "put a new service token in place before then", NULL);
	/* Asked again at once: nothing more is due, the same next point. */
	assert_int_equal(lifecycle_warn(w->lc, &w->now), exp - 86400);

	/* Each point in turn; the status line follows at each. */
	set_boot(w, w->now.boot + 86400 * USEC);
	assert_int_equal(lifecycle_warn(w->lc, &w->now), exp - 3600);
	assert_status(w, "(under 1d left)", "7d");
	set_boot(w, w->now.boot + (86400 - 3600) * USEC);
	assert_int_equal(lifecycle_warn(w->lc, &w->now), 0);
	assert_status(w, "(under 1h left)", NULL);
	set_boot(w, w->now.boot + 3600 * USEC);
	lifecycle_tick(w->lc, &w->now);
	assert_int_equal(lifecycle_warn(w->lc, &w->now), 0);
	assert_status(w, "service token for svc-warn expired at ", "under");

	/* A new token re-arms them; points in seconds, with the action given. */
	assert_int_equal(expiry_points_add(&p, 4), 0);
	assert_int_equal(expiry_points_add(&p, 2), 0);
	assert_int_equal(lifecycle_set_warnings(w->lc, &p, "put a new one in /etc/t"), 0);
	load_service(w, 7);
	exp = w->now.wall + 7;
	assert_status(w, "valid until", "under");
	assert_int_equal(lifecycle_warn(w->lc, &w->now), exp - 4);
	advance(w, 3 * USEC);
	assert_int_equal(lifecycle_warn(w->lc, &w->now), exp - 2);
	assert_status(w, "(under 4s left); not renewed unattended: put a new one in /etc/t", NULL);
	advance(w, 2 * USEC);
	assert_int_equal(lifecycle_warn(w->lc, &w->now), 0);
	assert_status(w, "(under 2s left)", NULL);
	world_free(w);
}

static void test_warn_late_refresh(void **state)
{
	struct world *w = world_new();
	struct lc_info info;
	const char *reason;
	uint64_t ticket;
	int64_t exp;
	char iso[32], iso2[32], want[128];

	to_valid(w);
	exp = w->now.wall + LIFETIME;
	lifecycle_info(w->lc, &w->now, &info);
	snprintf(want, sizeof(want), "valid until %s, refresh at %s",
			proto_format_time(exp, iso, sizeof(iso)),
			proto_format_time(info.next_refresh, iso2, sizeof(iso2)));
	assert_status(w, want, "late");
	/* A login token the daemon renews gets no warn_before points. */
	assert_int_equal(lifecycle_warn(w->lc, &w->now), 0);
	assert_false(info.refresh_late);

	/* Its refresh fails early: not late yet, a timer for the late point. */
	advance(w, 100 * USEC);
	assert_int_equal(lifecycle_refresh(w->lc, "test", NULL, &w->now, &ticket, &reason), 0);
	deliver(w, LC_SLOT_IDENTITY, HELPER_TRANSIENT, -1, NULL);
	assert_int_equal(state_of(w), PROTO_STATE_RETRYING);
	lifecycle_info(w->lc, &w->now, &info);
	assert_false(info.refresh_late);
	assert_int_equal(lifecycle_warn(w->lc, &w->now), exp - LIFETIME / 3);
	assert_status(w, "; login failed: fake failure; retry 1 at ", "late");

	/* Past two thirds of its life, still failing: late, warned once. */
	set_boot(w, BASE_BOOT + (uint64_t)(LIFETIME - LIFETIME / 3) * USEC);
	lifecycle_info(w->lc, &w->now, &info);
	assert_true(info.refresh_late);
	assert_status(w, "; refresh late: login failed: fake failure", NULL);
	assert_int_equal(lifecycle_warn(w->lc, &w->now), 0);
	assert_int_equal(lifecycle_warn(w->lc, &w->now), 0);

	/* The retry works: a new token, not late. */
	lifecycle_tick(w->lc, &w->now);
	deliver_ok(w, LC_SLOT_IDENTITY);
	lifecycle_info(w->lc, &w->now, &info);
	assert_false(info.refresh_late);
	assert_status(w, ", refresh at ", "late");
	world_free(w);
}

int main(void)
{
	static struct CMUnitTest cells[N_ROWS];
	static char names[N_ROWS][96];
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_table_complete),
			cmocka_unit_test(test_setups),
			cmocka_unit_test_setup_teardown(test_backoff, world_setup, world_teardown),
			cmocka_unit_test(test_retry_after),
			cmocka_unit_test(test_token_end),
			cmocka_unit_test(test_get),
			cmocka_unit_test(test_warn_points),
			cmocka_unit_test(test_warn_late_refresh),
	};
	int failed;

	if (sodium_init() < 0)
		return 1;
	for (size_t i = 0; i < N_ROWS; i++) {
		snprintf(names[i], sizeof(names[i]), "%s / %s", proto_state_name(rows[i].from),
				event_names[rows[i].event]);
		cells[i] = (struct CMUnitTest){
				.name = names[i],
				.test_func = run_cell,
				.setup_func = world_setup,
				.teardown_func = world_teardown,
				.initial_state = (void *)&rows[i],
		};
	}
	failed = cmocka_run_group_tests_name("lifecycle transition table", cells, NULL, NULL);
	failed += cmocka_run_group_tests_name("lifecycle time logic", tests, NULL, NULL);
	return failed != 0;
}
