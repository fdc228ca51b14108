/* SPDX-License-Identifier: MIT */
/* metrics_file: the exposition kept in a file for node_exporter's textfile collector, see
 * metrics.h. The collector reads the file whenever it is scraped, as another user: it must
 * never see a partial file (hence a temporary file renamed over it), and it may read it (mode
 * 0644: nothing secret is in it). Counter changes are written METRICS_FILE_DELAY_USEC after
 * the first one, so the serving path never writes files and an idle daemon never wakes up. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/log.h"
#include "daemon/metrics.h"

struct metrics_file {
	sd_event *event;
	struct metrics *metrics;
	const struct lifecycle *lifecycle;
	char *path;
	char *tmp; /* path.tmp: in the same directory, and not *.prom for the collector */
	ino_t ino; /* of the file last written, 0: none yet */
	sd_event_source *timer;
	bool armed;
	bool failing; /* the last write failed and was logged */
};

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct metrics_file *f = userdata;

	f->armed = false;
	(void)metrics_file_write(f);
	return 0;
}

/* A counter changed: write it soon, once. */
static void on_changed(void *userdata)
{
	struct metrics_file *f = userdata;
	int r;

	if (f->armed)
		return;
	if (!f->timer)
		r = sd_event_add_time_relative(f->event, &f->timer, CLOCK_MONOTONIC,
				METRICS_FILE_DELAY_USEC, 500 * 1000, on_timer, f);
	else if ((r = sd_event_source_set_time_relative(f->timer, METRICS_FILE_DELAY_USEC)) >= 0)
		r = sd_event_source_set_enabled(f->timer, SD_EVENT_ONESHOT);
	if (r < 0) {
		log_warning_errno(r, "cannot arm the metrics file's timer; it is written at the "
				     "next state change");
		return;
	}
	f->armed = true;
}

int metrics_file_new(sd_event *e, struct metrics *m, const struct lifecycle *lc, const char *path,
		struct metrics_file **ret)
{
	struct metrics_file *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->path = strdup(path);
	if (!f->path || asprintf(&f->tmp, "%s.tmp", path) < 0) {
		free(f->path);
		free(f);
		return -ENOMEM;
	}
	f->event = sd_event_ref(e);
	f->metrics = m;
	f->lifecycle = lc;
	metrics_set_hook(m, on_changed, f);
	*ret = f;
	return 0;
}

struct metrics_file *metrics_file_free(struct metrics_file *f)
{
	struct stat st;

	if (!f)
		return NULL;
	/* Metrics of a daemon that stopped would be served as if it ran on; only the file we
	 * wrote goes, not one that replaced it. */
	if (f->ino && lstat(f->path, &st) == 0 && st.st_ino == f->ino)
		(void)unlink(f->path);
	metrics_set_hook(f->metrics, NULL, NULL);
	sd_event_source_disable_unref(f->timer);
	sd_event_unref(f->event);
	free(f->path);
	free(f->tmp);
	free(f);
	return NULL;
}

const char *metrics_file_path(const struct metrics_file *f)
{
	return f->path;
}

/* Writes data[0..len) to tmp, mode 0644, and renames it over path. Returns 0 and its inode
 * in *ret_ino, or -errno. */
static int write_atomic(
		const char *path, const char *tmp, const char *data, size_t len, ino_t *ret_ino)
{
	_cleanup_(closep) int fd = -EBADF;
	struct stat st;
	int r = 0;

	/* O_EXCL after the unlink: a file or link someone left at tmp is never written
	 * through. */
	if (unlink(tmp) < 0 && errno != ENOENT)
		return -errno;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	/* The umask must not take the collector's read access away. */
	if (fchmod(fd, 0644) < 0 || fstat(fd, &st) < 0)
		r = -errno;
	while (r == 0 && len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		data += n;
		len -= (size_t)n;
	}
	if (r == 0 && close(take_fd(&fd)) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(tmp);
		return r;
	}
	*ret_ino = st.st_ino;
	return 0;
}

int metrics_file_write(struct metrics_file *f)
{
	_cleanup_(freep) char *text = NULL;
	struct lc_info info;
	struct lc_time now;
	size_t len;
	int r;

	if (f->armed) {
		(void)sd_event_source_set_enabled(f->timer, SD_EVENT_OFF);
		f->armed = false;
	}
	lc_time_now(&now);
	lifecycle_info(f->lifecycle, &now, &info);
	r = metrics_take(f->metrics, &info, &text, &len);
	if (r >= 0)
		r = write_atomic(f->path, f->tmp, text, len, &f->ino);
	if (r < 0) {
		if (!f->failing)
			log_warning_errno(r,
					"cannot write the metrics file %s; trying again at the "
					"next change",
					f->path);
		f->failing = true;
		return r;
	}
	if (f->failing)
		log_info("metrics file %s written again", f->path);
	f->failing = false;
	return 0;
}
