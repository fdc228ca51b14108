/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>

#include "client/password.h"
#include "common/util.h"

int locked_alloc(size_t size, struct locked *ret)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t ps = page > 0 ? (size_t)page : 4096;
	void *p;

	if (size == 0 || size > SIZE_MAX - ps)
		return -EINVAL;
	size = (size + ps - 1) / ps * ps;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Both are best effort: a low RLIMIT_MEMLOCK must not stop a login. */
	(void)madvise(p, size, MADV_DONTDUMP);
	*ret = (struct locked){.data = p, .size = size, .locked = mlock(p, size) == 0};
	return 0;
}

void locked_free(struct locked *m)
{
	if (!m->data)
		return;
	explicit_bzero(m->data, m->size);
	if (m->locked)
		munlock(m->data, m->size);
	munmap(m->data, m->size);
	*m = (struct locked){.data = NULL};
}

/* Signals that would otherwise end or stop us with echo off. Only the handler writes caught. */
static const int tty_signals[] = {
		SIGALRM,
		SIGHUP,
		SIGINT,
		SIGQUIT,
		SIGTERM,
		SIGUSR1,
		SIGUSR2,
		SIGTSTP,
		SIGTTIN,
		SIGTTOU,
};
static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
	caught = sig;
}

static bool is_stop_signal(int sig)
{
	return sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static void write_tty(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the prompt is a courtesy; reading still works without it */
		s += n;
		len -= (size_t)n;
	}
}

/* Reads until a newline or end of input, appending to buf[*len..size-1). Returns 1 at the
 * end of the line, 0 when more may come, or -errno. */
static int read_chunk(int fd, char *buf, size_t size, size_t *len)
{
	ssize_t n = read(fd, buf + *len, size - 1 - *len);
	char *nl;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (n == 0)
		return 1; /* end of input ends the line too */
	nl = memchr(buf + *len, '\n', (size_t)n);
	if (nl) {
		/* A terminal in canonical mode never returns bytes past the newline. */
		*len = (size_t)(nl - buf);
		return 1;
	}
	*len += (size_t)n;
	return *len >= size - 1 ? -EMSGSIZE : 0;
}

/* One attempt at the prompt with echo off; with raw, in non-canonical mode. Signals from
 * tty_signals are blocked except while waiting in ppoll(), so none can slip in between a check
 * and a blocking read. When one was caught, the terminal, the handlers and the mask are
 * restored and *ret_sig names it. */
static int read_tty_once(int fd, const char *prompt, bool raw, char *buf, size_t size,
		size_t *ret_len, int *ret_sig)
{
	struct sigaction sa = {.sa_handler = on_signal}, old[ELEMENTSOF(tty_signals)];
	bool installed[ELEMENTSOF(tty_signals)] = {false};
	struct termios saved, quiet;
	sigset_t block, oldmask;
	bool echo_off = false, prompted = false;
	size_t len = 0;
	int r;

	*ret_sig = 0;
	caught = 0;
	sigemptyset(&block);
	for (size_t i = 0; i < ELEMENTSOF(tty_signals); i++)
		sigaddset(&block, tty_signals[i]);
	if (sigprocmask(SIG_BLOCK, &block, &oldmask) < 0)
		return -errno;

	/* No SA_RESTART: a signal must interrupt the wait. A signal the caller ignores stays
	 * ignored. */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ELEMENTSOF(tty_signals); i++) {
		if (sigaction(tty_signals[i], NULL, &old[i]) < 0 || old[i].sa_handler == SIG_IGN)
			continue;
		installed[i] = sigaction(tty_signals[i], &sa, NULL) == 0;
	}

	if (tcgetattr(fd, &saved) < 0) {
		r = -errno;
		goto out;
	}
	/* In a background job, changing the terminal's modes belongs to the foreground job: stop
	 * as reading would (SIGTTIN), and prompt once continued in the foreground. */
	if (tcgetpgrp(fd) != getpgrp()) {
		*ret_sig = SIGTTIN;
		r = -EINTR;
		goto out;
	}
	quiet = saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	if (raw) {
		/* A canonical line holds at most 4095 bytes; the rest would be dropped. */
		quiet.c_lflag &= ~(tcflag_t)ICANON;
		quiet.c_cc[VMIN] = 1;
		quiet.c_cc[VTIME] = 0;
	} else {
		quiet.c_lflag |= ICANON;
	}
	if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0) {
		r = -errno;
		goto out;
	}
	echo_off = true;
	write_tty(fd, prompt);
	prompted = true;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};

		if (ppoll(&pfd, 1, NULL, &oldmask) < 0) {
			if (errno != EINTR) {
				r = -errno;
				break;
			}
			if (caught) {
				*ret_sig = caught;
				r = -EINTR;
				break;
			}
			continue;
		}
		r = read_chunk(fd, buf, size, &len);
		if (r != 0)
			break;
	}
	if (r == 1)
		r = len > 0 ? 0 : -ENODATA;

out:
	if (echo_off) {
		/* TCSAFLUSH: what was typed of an interrupted password must not reach the shell. */
		while (tcsetattr(fd, TCSAFLUSH, &saved) < 0 && errno == EINTR)
			;
	}
	if (prompted)
		write_tty(fd, "\n"); /* the Enter we swallowed, or a clean line after ^C */
	for (size_t i = 0; i < ELEMENTSOF(tty_signals); i++)
		if (installed[i])
			sigaction(tty_signals[i], &old[i], NULL);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);

	if (r < 0) {
		explicit_bzero(buf, size);
		return r;
	}
	buf[len] = '\0';
	*ret_len = len;
	return 0;
}

static int read_tty(const char *prompt, bool raw, char *buf, size_t size, size_t *ret_len)
{
	_cleanup_(closep) int fd = -EBADF;

	if (size < 2)
		return -EINVAL;
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENODEV ? -ENXIO : -errno;

	for (;;) {
		int sig, r = read_tty_once(fd, prompt, raw, buf, size, ret_len, &sig);

		if (sig == 0) {
			if (r == -EMSGSIZE)
				tcflush(fd, TCIFLUSH);
			return r;
		}
		/* The terminal is back as it was: now let the signal do what it would have. */
		kill(getpid(), sig);
		if (!is_stop_signal(sig))
			return -EINTR;
		/* Continued. Still in the background (e.g. "bg"): give up rather than spin. */
		if (tcgetpgrp(fd) != getpgrp())
			return -EIO;
	}
}

int password_read_tty(const char *prompt, char *buf, size_t size, size_t *ret_len)
{
	return read_tty(prompt, false, buf, size, ret_len);
}

int password_read_tty_long(const char *prompt, char *buf, size_t size, size_t *ret_len)
{
	return read_tty(prompt, true, buf, size, ret_len);
}

bool password_have_tty(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int password_read_fd(int fd, char *buf, size_t size, size_t *ret_len)
{
	size_t len = 0;
	int r = 0;

	if (size < 2)
		return -EINVAL;
	/* One byte at a time, so nothing past the line is consumed and no stdio buffer keeps a
	 * copy: the bytes go straight into buf. */
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, 1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0 || buf[len] == '\n')
			break;
		len++;
	}
	if (r == 0 && len >= size - 1)
		r = -EMSGSIZE;
	if (r == 0 && len > 0 && buf[len - 1] == '\r')
		len--;
	if (r == 0 && len == 0)
		r = -ENODATA;
	if (r < 0) {
		explicit_bzero(buf, size);
		return r;
	}
	explicit_bzero(buf + len, size - len);
	*ret_len = len;
	return 0;
}
