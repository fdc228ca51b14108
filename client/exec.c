/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/exec.h"
#include "client/format.h"
#include "client/privdir.h"
#include "common/duration.h"
#include "common/util.h"
#include "proto/jsonw.h"

/* Room for the longest get request line, with both numbers. */
#define GET_REQUEST_MAX 128

/* A token valid this long when CMD starts: longer than a typical regscale-cli run (an import
 * or a sync takes minutes), since nothing renews the token inside CMD. A login token is
 * refreshed in the background when a third of its life is left (8 h of a 24 h token, 20 min
 * of a 1 h one), so this rarely makes the daemon log in first; a service or pasted token
 * that ends sooner is refused (exit 4) rather than failing in the middle of a run. */
#define EXEC_DEFAULT_MIN_VALID_S (15 * 60)

/* regscale-cli writes its configuration, the token included, here in the private directory. */
#define EXEC_CONFIG_VAR  "REGSCALE_CONFIG_FILE"
#define EXEC_CONFIG_NAME "init.yaml"

/* Taken out of CMD's environment besides the variables of enum format_env_var: a password
 * regscale-cli would log in with by itself (its login reads REGSCALE_USER, older versions
 * REGSCALE_USERNAME), and a configuration file elsewhere. */
static const char *const removed_vars[] = {
		EXEC_CONFIG_VAR,
		"REGSCALE_USERNAME",
		"REGSCALE_USER",
		"REGSCALE_PASSWORD",
};

/* Sent on to CMD when someone other than the kernel sends them to us. */
static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

/* clang-format off */
static const char exec_usage[] =
	"Usage: regscale-token [OPTIONS] exec [--min-valid DURATION] [--wait DURATION]\n"
	"                                     [--] CMD [ARG...]\n"
	"\n"
	"Run CMD with the token in its environment, for regscale-cli and scripts, and exit\n"
	"with CMD's status. CMD gets\n"
	"  token=Bearer <jwt>     regscale-cli's Authorization header\n"
	"  domain=URL             the RegScale URL, for regscale-cli\n"
	"  userId=ID              the token's user id, for regscale-cli\n"
	"  REGSCALE_TOKEN=<jwt>   the token alone, for scripts and regscale login --token\n"
	"  REGSCALE_DOMAIN=URL, REGSCALE_USER_ID=ID\n"
	"                         the same for scripts\n"
	"  REGSCALE_CONFIG_FILE=DIR/init.yaml\n"
	"                         where regscale-cli writes its configuration, the token\n"
	"                         included: DIR is a new directory only you can read (under\n"
	"                         $XDG_RUNTIME_DIR, else /tmp), removed when CMD ends\n"
	"and none of REGSCALE_USERNAME, REGSCALE_USER and REGSCALE_PASSWORD, with which\n"
	"regscale-cli would log in by itself. A URL or user id the daemon does not know is\n"
	"removed from the environment, not inherited.\n"
	"The token must stay valid for --min-valid (default 15m, longer than a typical\n"
	"regscale-cli run: nothing renews the token while CMD runs); if it would not, the\n"
	"daemon refreshes it and waits up to --wait (default 30s) for a fresh one, else the\n"
	"exit is 4 and CMD does not run. SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to\n"
	"regscale-token go on to CMD (those from the terminal reach CMD by themselves).\n"
	"Exit status: CMD's; 128+N when signal N killed it; 127 when CMD is not found, 126\n"
	"when it cannot be run; before CMD runs, those of 'regscale-token --help'.\n"
	"DURATION is a whole number of seconds, alone or followed by s, m, h or d.\n";
/* clang-format on */

int exec_get_token(const struct globals *g, long long min_valid, long long wait,
		const char *slow_note, struct connect_reply *rep, const char **ret_token,
		size_t *ret_len)
{
	char buf[GET_REQUEST_MAX];
	struct cli_request req = {.op = PROTO_OP_GET, .line = buf, .slow_note = slow_note};
	const char *token;
	struct jsonw w;
	size_t len;
	int r;

	/* Always allow a wait: a get while the daemon's first login runs (it just started or
	 * reloaded) waits for it instead of failing. With --timeout and no --wait the wait
	 * fits inside the timeout. */
	if (wait < 0)
		wait = g->timeout_ms > 0
				       ? (g->timeout_ms > 1000 ? (g->timeout_ms - 1000) / 1000 : 0)
				       : PROTO_DEFAULT_WAIT_SEC;
	if (wait > PROTO_MAX_WAIT_SEC)
		wait = PROTO_MAX_WAIT_SEC;
	cli_request_begin(&w, req.op, buf, sizeof(buf));
	if (min_valid >= 0)
		jsonw_int(&w, PROTO_F_MIN_VALID, min_valid);
	jsonw_int(&w, PROTO_F_WAIT, wait);
	req.timeout_ms = wait * 1000 + CLI_WAIT_SLACK_MS;
	if (jsonw_end(&w, &req.len) < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot build the request; this is a bug, please report it");

	r = cli_call(g, &req, rep);
	if (r != 0)
		return r;
	/* The token stays in the reply line, its only copy, which connect_reply_done() wipes.
	 * Its alphabet needs no JSON escapes: one written with them is no usable token. */
	if (reply_read_span(&rep->r, PROTO_F_TOKEN, &token, &len) < 0 ||
			!format_token_valid(token, len)) {
		connect_reply_done(rep);
		return cli_fail(EXIT_FAILURE, CLI_E_BAD_REPLY,
				"the daemon's reply holds no usable token; check that "
				"regscale-token and regscale-tokend are the same version");
	}
	*ret_token = token;
	*ret_len = len;
	return 0;
}

/* Returns true if the environment entry "NAME=value" names a variable exec sets or removes. */
/* Returns true if s[0..n) is name. */
static bool strneq_len(const char *s, size_t n, const char *name)
{
	return strlen(name) == n && memcmp(s, name, n) == 0;
}

static bool replaced(const char *entry)
{
	size_t n = strcspn(entry, "=");

	for (int v = 0; v < _FORMAT_ENV_MAX; v++)
		if (strneq_len(entry, n, format_env_name((enum format_env_var)v)))
			return true;
	for (size_t i = 0; i < ELEMENTSOF(removed_vars); i++)
		if (strneq_len(entry, n, removed_vars[i]))
			return true;
	return false;
}

/* Returns "name=" followed by the n parts of iov, NUL-terminated, in new memory; or NULL. */
static char *env_entry(const char *name, const struct iovec *iov, int n)
{
	size_t len = strlen(name) + 2, o;
	char *s;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	s = malloc(len);
	if (!s)
		return NULL;
	o = strlen(name);
	memcpy(s, name, o);
	s[o++] = '=';
	for (int i = 0; i < n; i++) {
		memcpy(s + o, iov[i].iov_base, iov[i].iov_len);
		o += iov[i].iov_len;
	}
	s[o] = '\0';
	return s;
}

/* Builds CMD's environment in the child: ours without the variables exec replaces, then the
 * ones of e and config's. The strings holding the token live in the child only, until its
 * execve() replaces them. Returns the new array, its first added entry at *ret_added, or NULL
 * when memory ran out. */
static char **child_env(const struct format_env *e, const char *config, size_t *ret_added)
{
	size_t n = 0, o = 0;
	char **envp;

	for (char **p = environ; *p; p++)
		n++;
	envp = calloc(n + _FORMAT_ENV_MAX + 2, sizeof(*envp));
	if (!envp)
		return NULL;
	for (char **p = environ; *p; p++)
		if (!replaced(*p))
			envp[o++] = *p;
	*ret_added = o;
	for (int v = 0; v < _FORMAT_ENV_MAX; v++) {
		struct iovec iov[2];
		int k = format_env_value(e, (enum format_env_var)v, iov);

		if (k == 0)
			continue;
		envp[o] = env_entry(format_env_name((enum format_env_var)v), iov, k);
		if (!envp[o])
			return NULL;
		o++;
	}
	envp[o] = env_entry(EXEC_CONFIG_VAR,
			&(struct iovec){.iov_base = (void *)config, .iov_len = strlen(config)}, 1);
	if (!envp[o])
		return NULL;
	return envp;
}

/* The child: runs cmd with the environment of e and config, or says why it cannot and exits
 * like a shell would (127: not found, 126: cannot be run). */
static _Noreturn void run_child(char **cmd, const struct format_env *e, const char *config)
{
	char clean[256];
	size_t added = 0;
	char **envp = child_env(e, config, &added);
	int err;

	format_sanitize(cmd[0], clean, sizeof(clean));
	if (!envp) {
		cli_say("cannot build the environment of '%s': out of memory; close other programs "
			"and try again",
				clean);
		_exit(126);
	}
	execvpe(cmd[0], cmd, envp);
	err = errno;
	for (size_t i = added; envp[i]; i++)
		explicit_bzero(envp[i], strlen(envp[i]));
	if (err == ENOENT && !strchr(cmd[0], '/'))
		cli_say("cannot run '%s': command not found; check its name and PATH", clean);
	else if (err == ENOENT)
		cli_say("cannot run '%s': %s; check the path", clean, strerror(err));
	else if (err == EACCES)
		cli_say("cannot run '%s': %s; check that it is a program and executable "
			"(chmod +x)",
				clean, strerror(err));
	else
		cli_say("cannot run '%s': %s; check that it is a program for this machine", clean,
				strerror(err));
	_exit(err == ENOENT ? 127 : 126);
}

/* Waits for pid, sending it each forwarded signal that someone sends us; set holds them and
 * SIGCHLD, all blocked. Returns its exit status as a shell gives it: 128+N for signal N. */
static int wait_child(pid_t pid, const sigset_t *set)
{
	int status;

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(set, &si);

		if (sig < 0) {
			if (errno == EINTR)
				continue;
			/* Cannot happen with a valid set; wait without forwarding. */
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		if (sig == SIGCHLD) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid)
				break;
			continue;
		}
		/* A signal from the terminal (^C, ^\, a hangup) went to its whole foreground
		 * process group, CMD included: sending it again would deliver it twice. */
		if (si.si_code != SI_KERNEL)
			(void)kill(pid, sig);
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int exec_run(const struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
			{"min-valid", required_argument, NULL, 'm'},
			{"wait", required_argument, NULL, 'w'},
			{"help", no_argument, NULL, 'h'},
			CLI_GLOBAL_OPTIONS_MISPLACED,
			{0},
	};
	long long min_valid = EXEC_DEFAULT_MIN_VALID_S, wait = -1;
	char clean[256], config[PATH_MAX], note[128], d[32];
	struct privdir dir = {.fd = -EBADF};
	struct sigaction dfl = {.sa_handler = SIG_DFL}, old_chld;
	struct connect_reply rep;
	struct format_env env;
	sigset_t set, old_mask;
	const char *token;
	char **cmd;
	size_t len;
	pid_t pid;
	int c, r, ex = 0;

	while ((c = cli_getopt_operands(argc, argv, opts, exec_usage, &ex)) > 0) {
		switch (c) {
		case 'm':
		case 'w':
			if (cli_wait_option(c, optarg, &min_valid, &wait) < 0)
				return EXIT_USAGE;
			break;
		}
	}
	if (c < 0)
		return ex;
	if (optind >= argc)
		return cli_usage_error("missing the command to run, as in 'regscale-token exec -- "
				       "regscale version'");
	cmd = argv + optind;

	duration_format(min_valid, d, sizeof(d));
	snprintf(note, sizeof(note),
			"waiting for the daemon to get a token valid for %s from RegScale...", d);
	r = exec_get_token(g, min_valid, wait, note, &rep, &token, &len);
	if (r != 0)
		return r;
	if (format_env_read(&rep.r, token, len, &env) < 0) {
		connect_reply_done(&rep);
		return cli_fail(EXIT_FAILURE, CLI_E_BAD_REPLY,
				"the daemon's reply has a url or user_id that no environment "
				"variable can hold; check the daemon's configuration");
	}
	r = privdir_make(&dir);
	if (r < 0) {
		connect_reply_done(&rep);
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot make a private directory for regscale-cli's configuration: "
				"%s; check $XDG_RUNTIME_DIR and /tmp",
				strerror(-r));
	}
	if ((size_t)snprintf(config, sizeof(config), "%s/" EXEC_CONFIG_NAME, dir.path) >=
			sizeof(config)) {
		connect_reply_done(&rep);
		(void)privdir_remove(&dir);
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"the path of the private directory %s is too long; set "
				"XDG_RUNTIME_DIR to a shorter one",
				format_sanitize(dir.path, clean, sizeof(clean)));
	}

	/* Signals wait, blocked, until wait_child() takes them; CMD gets the mask and the
	 * SIGCHLD disposition we were given, and SIGPIPE as a shell gives it (main() ignores
	 * it for our own writes). */
	sigemptyset(&set);
	for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
		sigaddset(&set, forwarded_signals[i]);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old_mask);
	sigaction(SIGCHLD, &dfl, &old_chld);
	fflush(NULL);

	pid = fork();
	if (pid == 0) {
		sigaction(SIGCHLD, &old_chld, NULL);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
		run_child(cmd, &env, config);
	}
	/* Our copy of the token goes before the wait: CMD's environment holds the only ones. */
	connect_reply_done(&rep);
	explicit_bzero(&env, sizeof(env));
	if (pid < 0) {
		r = -errno;
		ex = cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot start '%s': %s; close other programs and try again",
				format_sanitize(cmd[0], clean, sizeof(clean)), strerror(-r));
	} else {
		ex = wait_child(pid, &set);
	}

	r = privdir_remove(&dir);
	if (r < 0) {
		r = cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot remove %s, which may hold a copy of the token: %s; remove "
				"it by hand",
				format_sanitize(dir.path, clean, sizeof(clean)), strerror(-r));
		if (ex == 0)
			ex = r;
	}
	/* The signals stay blocked: we exit next, and one arriving now must not take the place
	 * of CMD's status. */
	return ex;
}
