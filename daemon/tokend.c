/* SPDX-License-Identifier: MIT */
/* The daemon's wiring, see tokend.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "common/escape.h"
#include "common/util.h"
#include "daemon/access.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/server.h"
#include "daemon/source.h"
#include "daemon/tokend.h"
#include "proto/proto.h"

/* ---- logins: the lifecycle's hooks ---- */

static void login_done(struct tokend *d, enum lc_slot slot, struct helper_result *res)
{
	struct lc_login_result r = {
			.outcome = res->outcome,
			.retry_after = res->retry_after,
			.expires_in = res->expires_in,
			.user_id = res->user_id,
			.message = res->message,
			.token = res->token ? res->token->data : NULL,
			.token_len = res->token ? res->token->len : 0,
	};
	struct lc_time now;

	lc_time_now(&now);
	metrics_count_login(d->metrics,
			res->outcome == HELPER_OK ? METRICS_LOGIN_OK
			: res->outcome == HELPER_REJECTED || res->outcome == HELPER_MFA_REQUIRED
					? METRICS_LOGIN_REJECTED
					: METRICS_LOGIN_FAILED,
			now.wall);
	lifecycle_login_done(d->lifecycle, slot, &r, &now);
}

static void on_identity_login_done(struct helper_result *res, void *userdata)
{
	login_done(userdata, LC_SLOT_IDENTITY, res);
}

static void on_candidate_login_done(struct helper_result *res, void *userdata)
{
	login_done(userdata, LC_SLOT_CANDIDATE, res);
}

static void held_clear(struct held_login *h)
{
	free(h->username);
	secret_free(h->password);
	explicit_bzero(h->mfa, sizeof(h->mfa));
	*h = (struct held_login){0};
}

/* Starts the helper for slot with req; its answer comes back to the lifecycle as the slot's
 * login result. Returns 0 or -errno. */
static int start_helper(struct tokend *d, enum lc_slot slot, const struct helper_input *req)
{
	return helper_start(d->event, d->login_helper, req,
			slot == LC_SLOT_IDENTITY ? on_identity_login_done : on_candidate_login_done,
			d, &d->helpers[slot]);
}

/* Starts a login (HELPER_MODE_LOGIN) for slot. Returns 0 or -errno. */
static int start_login(struct tokend *d, enum lc_slot slot, const char *username,
		const struct secret *password, const char *mfa)
{
	struct helper_input req = {
			.mode = HELPER_MODE_LOGIN,
			.config = &d->config,
			.username = username,
			.password = password,
			.mfa = mfa,
	};

	return start_helper(d, slot, &req);
}

static int hook_start_login(void *userdata, enum lc_slot slot, const char *username,
		const struct secret *password, const char *mfa, const char **ret_reason)
{
	struct tokend *d = userdata;
	int r;

	d->helpers[slot] = helper_free(d->helpers[slot]);
	if (d->holding) {
		struct held_login *h = &d->held[slot];

		held_clear(h);
		h->username = strdup(username);
		h->password = secret_new_from(password->data, password->len);
		if (!h->username || !h->password) {
			held_clear(h);
			*ret_reason = "cannot keep the login for after start-up";
			return -ENOMEM;
		}
		h->has_mfa = mfa != NULL;
		snprintf(h->mfa, sizeof(h->mfa), "%s", mfa ? mfa : "");
		h->held = true;
		return 0;
	}
	r = start_login(d, slot, username, password, mfa);
	if (r < 0)
		*ret_reason = "cannot start the login helper";
	return r;
}

/* A pasted token is checked with RegScale's validateToken; the answer comes back like a
 * login's. Only a client asks for it, so never before READY=1: nothing to hold. */
static int hook_start_check(void *userdata, enum lc_slot slot, const struct secret *token,
		const char **ret_reason)
{
	struct tokend *d = userdata;
	struct helper_input req = {
			.mode = HELPER_MODE_VALIDATE,
			.config = &d->config,
			.token = token,
	};
	int r;

	d->helpers[slot] = helper_free(d->helpers[slot]);
	r = start_helper(d, slot, &req);
	if (r < 0)
		*ret_reason = "cannot start the login helper";
	return r;
}

static void hook_cancel_login(void *userdata, enum lc_slot slot)
{
	struct tokend *d = userdata;

	d->helpers[slot] = helper_free(d->helpers[slot]);
	held_clear(&d->held[slot]);
}

void tokend_hold_logins(struct tokend *d, bool hold)
{
	d->holding = hold;
	if (hold)
		return;
	for (int slot = 0; slot < _LC_SLOT_MAX; slot++) {
		struct held_login *h = &d->held[slot];
		struct helper_result res = {
				.outcome = HELPER_TRANSIENT, .retry_after = -1, .expires_in = -1};
		int r;

		if (!h->held)
			continue;
		r = start_login(d, (enum lc_slot)slot, h->username, h->password,
				h->has_mfa ? h->mfa : NULL);
		held_clear(h);
		if (r < 0) {
			snprintf(res.message, sizeof(res.message),
					"cannot start the login helper: %s", strerror(-r));
			login_done(d, (enum lc_slot)slot, &res);
		}
	}
}

/* Called inside lifecycle events, which may run inside a request's handler: the work is
 * deferred to the loop's next turn, so no handler runs within another. */
static void hook_changed(void *userdata)
{
	struct tokend *d = userdata;

	if (d->sync)
		(void)sd_event_source_set_enabled(d->sync, SD_EVENT_ONESHOT);
}

/* ---- timers ---- */

static int on_wakeup(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct tokend *d = userdata;
	struct lc_time now;

	lc_time_now(&now);
	lifecycle_tick(d->lifecycle, &now);
	hook_changed(d); /* re-arms for the next due moment */
	return 0;
}

/* Arms *s (made on first use) to fire once at usec on clock, or disables it when usec is
 * UINT64_MAX: the one way the daemon sets its timers. Returns 0 or -errno. */
static int set_timer(struct tokend *d, sd_event_source **s, clockid_t clock, uint64_t usec,
		sd_event_time_handler_t callback)
{
	int r;

	if (usec == UINT64_MAX)
		return *s ? sd_event_source_set_enabled(*s, SD_EVENT_OFF) : 0;
	if (!*s)
		return sd_event_add_time(d->event, s, clock, usec, 100 * 1000, callback, d);
	r = sd_event_source_set_time(*s, usec);
	return r < 0 ? r : sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
}

static void arm_wakeup(struct tokend *d)
{
	struct lc_time now;
	int r;

	lc_time_now(&now);
	/* CLOCK_BOOTTIME counts time suspended too, so a refresh due during a suspend runs at
	 * resume instead of a suspend's length too late. */
	r = set_timer(d, &d->wakeup, CLOCK_BOOTTIME, lifecycle_next_wakeup(d->lifecycle, &now),
			on_wakeup);
	if (r < 0)
		log_error_errno(r, "cannot arm the refresh timer");
}

static int on_warning(sd_event_source *s, uint64_t usec, void *userdata)
{
	hook_changed(userdata); /* on_sync logs the warning, sends STATUS= and re-arms */
	return 0;
}

/* Logs the expiry warning due now, if any, and arms the timer for the next point: on the
 * wall clock, since the points are times of day on it, as the token's exp is. */
static void arm_warning(struct tokend *d)
{
	struct lc_time now;
	int64_t at;
	int r;

	lc_time_now(&now);
	at = lifecycle_warn(d->lifecycle, &now);
	r = set_timer(d, &d->warning, CLOCK_REALTIME,
			at <= 0 ? UINT64_MAX : (uint64_t)at * 1000000ULL, on_warning);
	if (r < 0)
		log_error_errno(r, "cannot arm the expiry warning timer");
}

/* Arms fd to report the next setting of the wall clock (and nothing else). */
static int arm_clock_watch(int fd)
{
	/* An expiry that never comes: only the cancellation matters. */
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)INT32_MAX * 2}};

	if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
		return -errno;
	return 0;
}

static int on_clock_set(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct tokend *d = userdata;
	struct lc_time now;
	uint64_t n;

	/* ECANCELED is the news; re-arming is what clears it. */
	if (read(fd, &n, sizeof(n)) < 0 && errno != ECANCELED && errno != EAGAIN)
		log_warning_errno(-errno, "cannot read the clock watch");
	if (arm_clock_watch(fd) < 0)
		log_warning_errno(-errno, "cannot watch the wall clock any more");
	lc_time_now(&now);
	log_notice("the wall clock was set; measuring the token's deadlines again");
	lifecycle_clock_jumped(d->lifecycle, &now);
	return 0;
}

static int on_sync(sd_event_source *s, void *userdata)
{
	struct tokend *d = userdata;

	arm_wakeup(d);
	arm_warning(d);
	tokend_update_status(d, false);
	/* A state or login change goes into the metrics file at once. */
	if (d->metrics_file)
		(void)metrics_file_write(d->metrics_file);
	if (d->server)
		server_wake_waiters(d->server);
	return 0;
}

void tokend_update_status(struct tokend *d, bool ready)
{
	char line[sizeof(d->status)];
	struct lc_time now;

	lc_time_now(&now);
	lifecycle_status_line(d->lifecycle, &now, line, sizeof(line));
	/* One line: a newline would let a name smuggle other assignments into sd_notify. */
	escape_controls(line);
	if (!ready && strcmp(line, d->status) == 0)
		return;
	memcpy(d->status, line, sizeof(line));
	(void)sd_notifyf(0, "%sSTATUS=%s", ready ? "READY=1\n" : "", line);
}

/* ---- life ---- */

int tokend_new(sd_event *e, const char *helper_path, struct tokend **ret)
{
	const struct lc_hooks hooks = {
			.start_login = hook_start_login,
			.start_check = hook_start_check,
			.cancel_login = hook_cancel_login,
			.changed = hook_changed,
	};
	struct lc_hooks h = hooks;
	struct tokend *d;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->event = sd_event_ref(e);
	d->login_helper = helper_path;
	d->clock_fd = -EBADF;
	config_init(&d->config);
	h.userdata = d;

	r = vault_new(&d->vault);
	if (r < 0)
		goto fail;
	r = lifecycle_new(d->vault, &h, &d->lifecycle);
	if (r < 0)
		goto fail;
	r = metrics_new(&d->metrics);
	if (r < 0)
		goto fail;
	d->ops = (struct ops_env){
			.lifecycle = d->lifecycle,
			.config = &d->config,
			.metrics = d->metrics,
			.started_usec = now_monotonic_usec(),
			.pid = getpid(),
	};
	r = sd_event_add_defer(e, &d->sync, on_sync, d);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_enabled(d->sync, SD_EVENT_OFF);
	r = server_new(e, &d->ops, &d->server);
	if (r < 0)
		goto fail;

	d->clock_fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->clock_fd < 0 || arm_clock_watch(d->clock_fd) < 0 ||
			sd_event_add_io(e, &d->clock_set, d->clock_fd, EPOLLIN, on_clock_set, d) <
					0)
		log_warning_errno(-errno, "cannot watch the wall clock; a clock change is noticed "
					  "at the next timer only");
	*ret = d;
	return 0;
fail:
	tokend_free(d);
	return r;
}

struct tokend *tokend_free(struct tokend *d)
{
	if (!d)
		return NULL;
	/* Before the server: closing its connections changes the counters. */
	d->metrics_file = metrics_file_free(d->metrics_file);
	d->server = server_free(d->server);
	d->source = source_free(d->source);
	d->access = access_free(d->access);
	for (int i = 0; i < _LC_SLOT_MAX; i++) {
		d->helpers[i] = helper_free(d->helpers[i]);
		held_clear(&d->held[i]);
	}
	d->wakeup = sd_event_source_disable_unref(d->wakeup);
	d->warning = sd_event_source_disable_unref(d->warning);
	d->clock_set = sd_event_source_disable_unref(d->clock_set);
	d->sync = sd_event_source_disable_unref(d->sync);
	closep(&d->clock_fd);
	d->lifecycle = lifecycle_free(d->lifecycle);
	ops_token_fields_done(&d->ops.token_fields);
	d->vault = vault_free(d->vault);
	config_done(&d->config);
	d->metrics = metrics_free(d->metrics);
	sd_event_unref(d->event);
	free(d);
	return NULL;
}

/* Reads the password from password_file (which must be the daemon's alone) or the
 * credential "password". Returns 1 and the secret, 0 when neither is configured, or -errno
 * (logged, and kept as last_error): -EPERM for a password_file others may access. */
static int read_password(struct tokend *d, struct secret **ret)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	_cleanup_(freep) char *path = NULL;
	char reason[2048];
	int r;

	if (d->config.password_file)
		path = strdup(d->config.password_file);
	else if (creds && creds[0] == '/') {
		if (asprintf(&path, "%s/password", creds) < 0)
			return -ENOMEM;
		if (access(path, F_OK) < 0)
			return 0;
	} else
		return 0;
	if (!path)
		return -ENOMEM;
	if (d->config.password_file)
		r = secret_read_private_file(path, PIPE_MAX_PASSWORD, ret, reason, sizeof(reason));
	else
		r = secret_read_file(path, PIPE_MAX_PASSWORD, ret);
	if (r == -EPERM && d->config.password_file && reason[0]) {
		lifecycle_set_error(d->lifecycle, "password file %s", reason);
		log_error("password file %s%s", reason,
				d->loaded ? "; keeping the current credentials" : "");
		return r;
	}
	if (r < 0) {
		lifecycle_set_error(d->lifecycle, "cannot read the password from %s: %s", path,
				r == -ENODATA ? "file is empty" : strerror(-r));
		log_error("cannot read the password from %s: %s; keeping the current credentials",
				path, r == -ENODATA ? "file is empty" : strerror(-r));
		return r;
	}
	return 1;
}

/* Gives the lifecycle warn_before and what renews a service token here. Returns 0 or
 * -ENOMEM. */
static int set_warnings(struct tokend *d)
{
	_cleanup_(freep) char *action = NULL;

	if (!d->config.token_file)
		action = strdup("put a new one in the credential \"token\" and restart the "
				"daemon");
	else if (asprintf(&action, "put a new one in %s (read when it changes)",
				 d->config.token_file) < 0)
		action = NULL;
	if (!action)
		return -ENOMEM;
	return lifecycle_set_warnings(d->lifecycle, &d->config.warn_before, action);
}

/* Keeps the metrics file the configuration names (none, the same or another one than so far)
 * and writes it now. */
static void metrics_file_setup(struct tokend *d)
{
	const char *path = d->config.metrics_file;

	if (d->metrics_file && (!path || strcmp(path, metrics_file_path(d->metrics_file)) != 0))
		d->metrics_file = metrics_file_free(d->metrics_file);
	if (path && !d->metrics_file &&
			metrics_file_new(d->event, d->metrics, d->lifecycle, path,
					&d->metrics_file) < 0) {
		log_error("cannot keep the metrics file %s: out of memory", path);
		return;
	}
	if (d->metrics_file)
		(void)metrics_file_write(d->metrics_file);
}

int tokend_load(struct tokend *d)
{
	_cleanup_(secret_freep) struct secret *password = NULL;
	struct lc_time now;
	int r;

	metrics_file_setup(d);
	lifecycle_set_default_lifetime(d->lifecycle, d->config.default_lifetime_sec);
	if (set_warnings(d) < 0)
		log_error("cannot set up the expiry warnings: out of memory");
	d->source = source_free(d->source);
	d->ops.source = NULL;
	if (source_new(d->event, &d->config, d->lifecycle, d->login_helper, &d->source) >= 0) {
		d->ops.source = d->source;
		lifecycle_forget_config(d->lifecycle);
		r = source_load(d->source);
		(void)source_watch(d->source);
		d->loaded = true;
		return r == -EPERM ? r : 0;
	}
	r = read_password(d, &password);
	d->loaded = true;
	if (r < 0)
		return r == -EPERM ? r : 0;
	lc_time_now(&now);
	/* A login that could not start was logged, and will be retried, by the lifecycle. */
	if (lifecycle_configure(d->lifecycle, d->config.username, password, d->config.url, &now) ==
			-ENOMEM)
		log_error("cannot set up the credentials: out of memory");
	return 0;
}

int tokend_reload(struct tokend *d)
{
	struct access *access = NULL;
	struct config fresh;
	struct lc_time now;
	char err[512];
	int r;

	(void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
			(unsigned long long)now_monotonic_usec());
	if (d->config.path) {
		config_init(&fresh);
		r = config_load(&fresh, d->config.path, err, sizeof(err));
		if (r < 0) {
			log_error("reload: %s; keeping the running configuration and token", err);
			config_done(&fresh);
			goto done;
		}
		if (fresh.keys_read == 0) {
			/* A file caught half-written, or emptied by mistake: not an intent to run
			 * without a configuration. */
			log_error("reload: %s: holds no settings (empty, or only comments); "
				  "keeping "
				  "the running configuration and token",
					d->config.path);
			config_done(&fresh);
			goto done;
		}
		r = access_new(&fresh, &access, err, sizeof(err));
		if (r < 0) {
			log_error("reload: %s: %s; keeping the running configuration and token",
					d->config.path, err);
			config_done(&fresh);
			goto done;
		}
		server_set_access(d->server, access);
		access_free(d->access);
		d->access = access;
		if (fresh.socket && d->config.socket && strcmp(fresh.socket, d->config.socket) != 0)
			log_warning("reload: a new socket path takes effect on restart only");
		free(fresh.socket);
		fresh.socket = d->config.socket;
		d->config.socket = NULL;
		/* The source and the helpers point at d->config: swap in place. */
		config_done(&d->config);
		d->config = fresh;
	}
	lc_time_now(&now);
	lifecycle_reloaded(d->lifecycle, &now);
	/* A secret file others may access stops a start, not a running daemon: it keeps what
	 * it holds (tokend_load logged why). */
	(void)tokend_load(d);
done:
	tokend_update_status(d, true);
	return 0;
}
