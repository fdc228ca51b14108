/* SPDX-License-Identifier: MIT */
/* regscale-tokend: holds a RegScale token encrypted in memory and serves it to local
 * clients over a Unix socket. Runs in the foreground; see README.md. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "common/harden.h"
#include "common/util.h"
#include "daemon/access.h"
#include "daemon/listen.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/server.h"
#include "daemon/source.h"
#include "daemon/tokend.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: regscale-tokend [OPTIONS]\n"
		   "\n"
		   "Keeps a RegScale token encrypted in memory and serves it to local clients "
		   "over\n"
		   "a Unix socket. Runs in the foreground; logs to stderr.\n"
		   "\n"
		   "Options:\n"
		   "  -c, --config FILE   read the configuration from FILE (INI)\n"
		   "  -s, --socket PATH   listen on PATH (overrides [daemon] socket)\n"
		   "      --login-helper PATH  run PATH as the login helper (default:\n"
		   "                      " RT_LOGIN_HELPER ")\n"
		   "  -d, --debug         log debug lines too\n"
		   "  -h, --help          show this help\n"
		   "  -V, --version       show the version\n"
		   "\n"
		   "Default socket: $XDG_RUNTIME_DIR/regscale-token/default.sock, or\n"
		   "/run/regscale-token/default.sock when run as root.\n");
}

/* Returns the default socket path in a new string, or NULL with a logged reason. */
static char *default_socket_path(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *path = NULL;

	if (getuid() == 0)
		return strdup("/run/regscale-token/default.sock");
	if (!xdg || xdg[0] != '/') {
		log_error("XDG_RUNTIME_DIR is not set; pass --socket PATH or set [daemon] socket");
		return NULL;
	}
	if (asprintf(&path, "%s/regscale-token/default.sock", xdg) < 0)
		return NULL;
	return path;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct tokend *d = userdata;

	if (si->ssi_signo == SIGHUP) {
		log_info("SIGHUP: reloading configuration and token");
		return tokend_reload(d);
	}
	log_info("%s: shutting down", strsignal((int)si->ssi_signo));
	(void)sd_notify(0, "STOPPING=1");
	server_shutdown(d->server);
	return 0;
}

/* Listens on the socket systemd passed, else on socket_arg, [daemon] socket or the default
 * path; the metrics name the daemon after that socket's file. */
static int setup_socket(struct tokend *d, const char *socket_arg)
{
	_cleanup_(freep) char *path = NULL;
	int n, r;

	n = sd_listen_fds(1);
	if (n < 0)
		return log_error_errno(n, "cannot read the sockets passed by systemd");
	if (n > 1)
		return log_error_errno(-EINVAL, "expected one socket from systemd, got %d", n);
	if (n == 1) {
		if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)
			return log_error_errno(-EINVAL, "the socket passed by systemd is not a "
							"listening Unix stream socket");
		r = server_listen_fd(d->server, SD_LISTEN_FDS_START);
		if (r < 0)
			return r;
		r = listen_socket_path(SD_LISTEN_FDS_START, &path);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			log_info("serving on the socket passed by systemd");
			log_warning_errno(r,
					"cannot tell the path of the socket passed by systemd; "
					"the metrics carry profile=\"\"");
			return 0;
		}
		log_info("serving on the socket passed by systemd, %s", path);
	} else {
		if (socket_arg)
			path = strdup(socket_arg);
		else if (d->config.socket)
			path = strdup(d->config.socket);
		else
			path = default_socket_path();
		if (!path)
			return -ENOMEM;
		r = server_listen_path(d->server, path, access_is_shared(d->access));
		if (r < 0)
			return r;
		log_info("serving on %s", path);
	}
	r = metrics_set_socket(d->metrics, path);
	return r < 0 ? log_error_errno(r, "cannot name the metrics' profile") : 0;
}

static int run(const char *config_path, const char *socket_arg, const char *login_helper)
{
	sd_event *e = NULL;
	struct tokend *d = NULL;
	sigset_t mask;
	char err[512];
	int r;

	r = sd_event_new(&e);
	if (r < 0) {
		log_error_errno(r, "cannot create the event loop");
		goto out;
	}
	r = tokend_new(e, login_helper, &d);
	if (r < 0) {
		log_error_errno(r, "cannot set up secure memory");
		goto out;
	}
	if (config_path) {
		r = config_load(&d->config, config_path, err, sizeof(err));
		if (r < 0) {
			log_error("%s", err);
			goto out;
		}
	}
	r = access_new(&d->config, &d->access, err, sizeof(err));
	if (r < 0) {
		log_error("%s: %s", config_path ? config_path : "configuration", err);
		goto out;
	}
	server_set_access(d->server, d->access);
	/* A watchdog ping when the service manager asks for one (WatchdogSec=), none
	 * otherwise: an idle daemon makes no wakeups at all. */
	r = sd_event_set_watchdog(e, true);
	if (r < 0)
		log_warning_errno(r, "cannot set up the watchdog");

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD); /* for sd_event_add_child(): login helpers */
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((r = sd_event_add_signal(e, NULL, SIGTERM, on_signal, d)) < 0 ||
			(r = sd_event_add_signal(e, NULL, SIGINT, on_signal, d)) < 0 ||
			(r = sd_event_add_signal(e, NULL, SIGHUP, on_signal, d)) < 0) {
		log_error_errno(r, "cannot watch signals");
		goto out;
	}

	r = setup_socket(d, socket_arg);
	if (r < 0)
		goto out;

	/* A missing or bad token is not fatal: the daemon answers no_token with the reason
	 * and picks the token up as soon as the file is fixed or a login succeeds. A secret
	 * file other users may read or change is: it was logged with the fix. */
	/* READY=1 before any helper process: the first login is kept until it went out. */
	tokend_hold_logins(d, true);
	r = tokend_load(d);
	if (r < 0)
		goto out;
	tokend_update_status(d, true);
	tokend_hold_logins(d, false);

	r = sd_event_loop(e);
	if (r < 0)
		log_error_errno(r, "event loop failed");
out:
	tokend_free(d);
	sd_event_unref(e);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
			{"config", required_argument, NULL, 'c'},
			{"socket", required_argument, NULL, 's'},
			{"debug", no_argument, NULL, 'd'},
			{"login-helper", required_argument, NULL, 'L'},
			{"help", no_argument, NULL, 'h'},
			{"version", no_argument, NULL, 'V'},
			{0},
	};
	const char *config_path = NULL, *socket_arg = NULL, *login_helper = RT_LOGIN_HELPER;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:s:dhV", options, NULL)) >= 0) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 's':
			socket_arg = optarg;
			break;
		case 'd':
			log_set_debug(true);
			break;
		case 'L':
			login_helper = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("regscale-tokend %s\n", RT_VERSION);
			return EXIT_SUCCESS;
		default:
			fprintf(stderr, "Try 'regscale-tokend --help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "regscale-tokend: unexpected argument \"%s\"; try --help\n",
				argv[optind]);
		return 2;
	}
	/* Unreadable to same-uid ptrace and core dumps: the process holds secrets. */
	r = harden_process();
	if (r < 0)
		log_warning_errno(r, "cannot make the process non-dumpable (PR_SET_DUMPABLE, "
				     "RLIMIT_CORE)");
	/* Writes to a client or a login helper that went away fail with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	return run(config_path, socket_arg, login_helper);
}
