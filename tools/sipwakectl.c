/* SPDX-License-Identifier: MIT */
/*
 * sipwakectl: the operator's command line for a running sipwaked. It finds
 * the control socket (-s, else admin.socket of the -c config or of the
 * default config, else the built-in default), sends one request line,
 * reads the one-line JSON answer (see include/sipwake/admin.h) and prints
 * it as a table or, with --json, as one JSON document.
 * Exit status: 0 ok, 1 the daemon answered an error, 64 bad usage,
 * 69 the daemon cannot be reached, 78 the -c config cannot be read.
 */
#include <errno.h>
#include <getopt.h>
#include <libconfig.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sipwake/admin.h"
#include "sipwake/config.h"
#include "sipwakectl.h"

#define DEFAULT_SOCKET "/run/sipwake/sipwake.sock"
#define MAX_ANSWER (64 * 1024 * 1024)
#define ANSWER_TIMEOUT_MS ((ADMIN_PUSH_TEST_TIMEOUT + 10) * 1000)
#define MAX_COLS 8
#define MAX_CELL 64

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sipwakectl [-c FILE | -s SOCKET] [--json] COMMAND [ARGS]\n"
		"commands:\n"
		"  status                     version, mode, uptime, counts\n"
		"  registrations [AOR]        bindings (push tokens shortened)\n"
		"  unregister AOR             remove every binding of AOR\n"
		"  messages [AOR]             stored MESSAGEs waiting for delivery\n"
		"  stats                      counters, gauges and histograms\n"
		"  reload                     re-read the configuration (as SIGHUP)\n"
		"  push test AOR [--type voip|alert|background]\n"
		"                             send a test push to AOR's devices\n"
		"  account set AOR [--username NAME] [--realm REALM] --password-stdin | --ha1 HEX\n"
		"                             store a digest account (password read from stdin)\n"
		"  account list [AOR]         accounts (never their secrets)\n"
		"  account delete AOR         remove an account\n"
		"                             (account commands use the database of the -c config\n"
		"                             directly, whether sipwaked runs or not)\n"
		"options:\n"
		"  -c, --config FILE   read admin.socket (and storage.database) from FILE\n"
		"                      (default %s)\n"
		"  -s, --socket PATH   control socket (overrides -c)\n"
		"  -j, --json          print the daemon's answer as JSON\n"
		"  -h, --help          this help\n"
		"exit status: 0 ok, 1 daemon error, 64 usage, 69 daemon unreachable,\n"
		"             78 the config cannot be read\n",
		config_default_path());
}

/* admin.socket from a config file; NULL + message when it cannot be read. */
static char *socket_from_config(const char *path, int required)
{
	config_t cf;
	const char *v = NULL;
	char *res = NULL, *dir = strdup(path), *slash;

	config_init(&cf);
	if (dir && (slash = strrchr(dir, '/')) != NULL) {
		*slash = 0;
		config_set_include_dir(&cf, dir[0] ? dir : "/");
	}
	if (!config_read_file(&cf, path)) {
		if (required) {
			if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
				fprintf(stderr, "sipwakectl: cannot read %s: %s\n", path,
					strerror(errno));
			else
				fprintf(stderr, "sipwakectl: %s:%d: %s\n",
					config_error_file(&cf) ? config_error_file(&cf) : path,
					config_error_line(&cf), config_error_text(&cf));
		}
	} else if (config_lookup_string(&cf, "admin.socket", &v) && v[0]) {
		res = strdup(v);
	} else {
		res = strdup(DEFAULT_SOCKET);
	}
	config_destroy(&cf);
	free(dir);
	return res;
}

static int connect_socket(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "sipwakectl: socket path too long: %s\n", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;
		const char *hint = e == ENOENT	       ? " (is sipwaked running?)"
				   : e == ECONNREFUSED ? " (sipwaked is not running; stale socket)"
				   : e == EACCES       ? " (are you root or in the sipwake group?)"
						       : "";
		fprintf(stderr, "sipwakectl: cannot connect to %s: %s%s\n", path, strerror(e),
			hint);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Send the request line, read one answer line. NULL (message printed) on failure. */
static char *exchange(const char *path, const char *line)
{
	size_t len = 0, cap = 4096, llen = strlen(line);
	char *buf = NULL;
	int fd = connect_socket(path);

	if (fd < 0)
		return NULL;
	for (size_t off = 0; off < llen;) {
		ssize_t n = send(fd, line + off, llen - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "sipwakectl: cannot write to %s: %s\n", path,
				strerror(errno));
			goto fail;
		}
		off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	buf = malloc(cap);
	if (!buf)
		goto fail;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		int r = poll(&p, 1, ANSWER_TIMEOUT_MS);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "sipwakectl: no answer from %s within %d s\n", path,
				ANSWER_TIMEOUT_MS / 1000);
			goto fail;
		}
		if (len + 1 >= cap) {
			char *nb;
			if (cap >= MAX_ANSWER) {
				fprintf(stderr, "sipwakectl: answer from %s too large\n", path);
				goto fail;
			}
			nb = realloc(buf, cap * 2);
			if (!nb)
				goto fail;
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "sipwakectl: cannot read from %s: %s\n", path,
				strerror(errno));
			goto fail;
		}
		if (n == 0) {
			fprintf(stderr, "sipwakectl: %s closed the connection without an answer\n",
				path);
			goto fail;
		}
		len += (size_t)n;
		buf[len] = 0;
		if (memchr(buf + len - (size_t)n, '\n', (size_t)n))
			break;
	}
	close(fd);
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

/* ---- text output --------------------------------------------------------- */

struct table {
	int cols;
	const char *head[MAX_COLS];
	char **cells; /* rows * cols, malloc'd strings */
	size_t rows, cap;
};

static void table_row(struct table *t, ...)
{
	va_list ap;

	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char **c = realloc(t->cells, cap * (size_t)t->cols * sizeof(*c));
		if (!c)
			return;
		t->cells = c;
		t->cap = cap;
	}
	va_start(ap, t);
	for (int i = 0; i < t->cols; i++) {
		const char *s = va_arg(ap, const char *);
		t->cells[t->rows * (size_t)t->cols + (size_t)i] = strdup(s ? s : "-");
	}
	va_end(ap);
	t->rows++;
}

/* One cell padded to width, or the last one of its row (width < 0). */
static void put_cell(const char *s, int width)
{
	if (width < 0)
		printf("%s\n", s);
	else
		printf("%-*s  ", width, s);
}

static void table_print(struct table *t)
{
	int w[MAX_COLS];

	for (int i = 0; i < t->cols; i++) {
		w[i] = (int)strlen(t->head[i]);
		for (size_t r = 0; r < t->rows; r++) {
			const char *c = t->cells[r * (size_t)t->cols + (size_t)i];
			int l = c ? (int)strlen(c) : 1;
			if (l > w[i])
				w[i] = l > MAX_CELL ? MAX_CELL : l;
		}
	}
	for (int i = 0; i < t->cols; i++)
		put_cell(t->head[i], i + 1 < t->cols ? w[i] : -1);
	for (size_t r = 0; r < t->rows; r++)
		for (int i = 0; i < t->cols; i++) {
			const char *c = t->cells[r * (size_t)t->cols + (size_t)i];
			put_cell(c ? c : "-", i + 1 < t->cols ? w[i] : -1);
		}
	for (size_t k = 0; k < t->rows * (size_t)t->cols; k++)
		free(t->cells[k]);
	free(t->cells);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "-";
}

static void duration(char *buf, size_t len, long long s)
{
	if (s >= 86400)
		snprintf(buf, len, "%lldd%02lldh%02lldm", s / 86400, s % 86400 / 3600,
			 s % 3600 / 60);
	else if (s >= 3600)
		snprintf(buf, len, "%lldh%02lldm%02llds", s / 3600, s % 3600 / 60, s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%llds", s);
}

static void join_list(json_t *arr, char *buf, size_t len)
{
	size_t i, off = 0;
	json_t *v;

	buf[0] = 0;
	json_array_foreach(arr, i, v) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
				 json_string_value(v) ? json_string_value(v) : "?");
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	if (!buf[0])
		snprintf(buf, len, "-");
}

static void print_cluster(json_t *c)
{
	size_t i;
	json_t *n;

	if (!json_is_object(c))
		return;
	printf("%-16snode %s, Redis %s, %lld write(s) awaiting Redis\n", "cluster", jstr(c, "node"),
	       jstr(c, "redis"),
	       (long long)json_integer_value(json_object_get(c, "unconfirmed_writes")));
	json_array_foreach(json_object_get(c, "nodes"), i, n) {
		json_t *age = json_object_get(n, "heartbeat_age_ms");
		char when[64];

		if (json_is_integer(age))
			snprintf(when, sizeof(when), "heartbeat %lld ms ago",
				 (long long)json_integer_value(age));
		else
			snprintf(when, sizeof(when), "no heartbeat: dead");
		printf("%-16s%s%s: %s\n", "  node", jstr(n, "name"),
		       json_is_true(json_object_get(n, "self")) ? " (this one)" : "", when);
	}
}

static void print_status(json_t *r)
{
	char up[64], listen[512], domains[512];
	json_t *prov = json_object_get(r, "providers");

	duration(up, sizeof(up), (long long)json_integer_value(json_object_get(r, "uptime")));
	join_list(json_object_get(r, "listen"), listen, sizeof(listen));
	join_list(json_object_get(r, "domains"), domains, sizeof(domains));
	printf("sipwaked %s, %s mode, pid %lld, up %s\n", jstr(r, "version"), jstr(r, "mode"),
	       (long long)json_integer_value(json_object_get(r, "pid")), up);
	printf("%-16s%s\n", "config", jstr(r, "config"));
	printf("%-16s%s\n", "upstream", jstr(r, "upstream"));
	printf("%-16s%s\n", "listen", listen);
	printf("%-16s%s\n", "domains", domains);
	printf("%-16s%lld\n", "bindings", (long long)json_integer_value(json_object_get(r, "bindings")));
	printf("%-16s%lld\n", "transactions",
	       (long long)json_integer_value(json_object_get(r, "transactions")));
	printf("%-16s%lld\n", "stored messages",
	       (long long)json_integer_value(json_object_get(r, "stored_messages")));
	printf("%-16sapns %s, fcm %s (push test %s)\n", "push providers",
	       json_is_true(json_object_get(prov, "apns")) ? "configured" : "off",
	       json_is_true(json_object_get(prov, "fcm")) ? "configured" : "off",
	       jstr(r, "push_test"));
	printf("%-16s%s\n", "log level", jstr(r, "log_level"));
	print_cluster(json_object_get(r, "cluster"));
}

static void print_registrations(json_t *r)
{
	struct table t = {.cols = 7,
			  .head = {"AOR", "CONTACT", "PUSH", "RECEIVED", "EXPIRES", "UPSTREAM", "UA"}};
	json_t *arr = json_object_get(r, "registrations"), *b;
	size_t i;

	json_array_foreach(arr, i, b) {
		json_t *p = json_object_get(b, "push");
		json_t *u = json_object_get(b, "upstream");
		char push[128] = "-", exp[32], up[160] = "-", left[32];

		if (json_is_object(p)) {
			const char *tok = json_string_value(json_object_get(p, "token"));
			const char *voip = json_string_value(json_object_get(p, "voip_token"));
			snprintf(push, sizeof(push), "%s %s%s%s", jstr(p, "provider"),
				 tok ? tok : "", tok && voip ? " voip:" : voip ? "voip:" : "",
				 voip ? voip : "");
		}
		duration(exp, sizeof(exp),
			 (long long)json_integer_value(json_object_get(b, "expires_in")));
		if (json_is_object(u)) {
			/* kept alive by sipwake: upstream's expiry, and its refresh state */
			duration(left, sizeof(left),
				 (long long)json_integer_value(json_object_get(u, "expires_in")));
			snprintf(up, sizeof(up), "%s %s", left, jstr(u, "refresh"));
		}
		table_row(&t, jstr(b, "aor"), jstr(b, "contact"), push, jstr(b, "received"), exp, up,
			  jstr(b, "user_agent"));
	}
	if (t.rows)
		table_print(&t);
	else
		free(t.cells);
	printf("%lld registration(s)%s\n", (long long)json_integer_value(json_object_get(r, "count")),
	       json_is_true(json_object_get(r, "truncated")) ? ", first ones shown" : "");
}

static void print_messages(json_t *r)
{
	struct table t = {.cols = 6, .head = {"ID", "TO", "FROM", "SIZE", "AGE", "ATTEMPTS"}};
	json_t *arr = json_object_get(r, "messages"), *m;
	time_t now = time(NULL);
	size_t i;

	json_array_foreach(arr, i, m) {
		char id[32], size[32], age[32], att[16];
		snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(m, "id")));
		snprintf(size, sizeof(size), "%lld",
			 (long long)json_integer_value(json_object_get(m, "size")));
		duration(age, sizeof(age),
			 (long long)(now - json_integer_value(json_object_get(m, "received"))));
		snprintf(att, sizeof(att), "%lld",
			 (long long)json_integer_value(json_object_get(m, "attempts")));
		table_row(&t, id, jstr(m, "aor"), jstr(m, "from"), size, age, att);
	}
	if (t.rows)
		table_print(&t);
	else
		free(t.cells);
	printf("%lld stored message(s)%s\n", (long long)json_integer_value(json_object_get(r, "count")),
	       json_is_true(json_object_get(r, "truncated")) ? ", first ones shown" : "");
}

static void print_labels(json_t *labels, const char *extra)
{
	const char *k;
	json_t *v;
	int first = 1;

	if (!json_object_size(labels) && !extra)
		return;
	putchar('{');
	json_object_foreach(labels, k, v) {
		printf("%s%s=\"%s\"", first ? "" : ",", k, json_string_value(v) ? json_string_value(v) : "");
		first = 0;
	}
	if (extra)
		printf("%s%s", first ? "" : ",", extra);
	putchar('}');
}

static void print_number(json_t *v)
{
	if (json_is_integer(v))
		printf("%lld", (long long)json_integer_value(v));
	else
		printf("%g", json_number_value(v));
}

static void print_stats(json_t *r)
{
	const char *name;
	json_t *fam;

	json_object_foreach(r, name, fam) {
		json_t *s;
		size_t i;
		int hist = !strcmp(jstr(fam, "type"), "histogram");

		json_array_foreach(json_object_get(fam, "series"), i, s) {
			printf("%s%s", name, hist ? "_count" : "");
			print_labels(json_object_get(s, "labels"), NULL);
			putchar(' ');
			print_number(json_object_get(s, hist ? "count" : "value"));
			putchar('\n');
			if (hist) {
				printf("%s_sum", name);
				print_labels(json_object_get(s, "labels"), NULL);
				putchar(' ');
				print_number(json_object_get(s, "sum"));
				putchar('\n');
			}
		}
	}
}

static void print_push(json_t *r)
{
	struct table t = {.cols = 6,
			  .head = {"BINDING", "PROVIDER", "TOKEN", "RESULT", "HTTP", "LATENCY"}};
	json_t *d;
	size_t i;

	json_array_foreach(json_object_get(r, "pushes"), i, d) {
		char http[16], lat[32], res[128];
		const char *reason = json_string_value(json_object_get(d, "reason"));

		snprintf(http, sizeof(http), "%lld",
			 (long long)json_integer_value(json_object_get(d, "http_status")));
		snprintf(lat, sizeof(lat), "%.0f ms",
			 json_number_value(json_object_get(d, "latency_ms")));
		snprintf(res, sizeof(res), "%s%s%s", jstr(d, "result"), reason ? " " : "",
			 reason ? reason : "");
		table_row(&t, jstr(d, "binding"), jstr(d, "provider"), jstr(d, "token"), res, http,
			  lat);
	}
	if (t.rows)
		table_print(&t);
	else
		free(t.cells);
	printf("%s\n", jstr(r, "message"));
}

/* Anything else: "key: value" lines, nested values as compact JSON. */
static void print_accounts(json_t *r)
{
	struct table t = {.cols = 5, .head = {"AOR", "USERNAME", "REALM", "ALGORITHMS", "UPDATED"}};
	size_t i;
	json_t *a;

	json_array_foreach(json_object_get(r, "accounts"), i, a) {
		char algos[64], when[32] = "-";
		time_t u = (time_t)json_integer_value(json_object_get(a, "updated"));
		struct tm tm;

		join_list(json_object_get(a, "algorithms"), algos, sizeof(algos));
		if (u > 0 && gmtime_r(&u, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm);
		table_row(&t, jstr(a, "aor"), jstr(a, "username"), jstr(a, "realm"), algos, when);
	}
	if (t.rows == 0)
		printf("no accounts\n");
	else
		table_print(&t);
}

static void print_generic(json_t *r)
{
	const char *k;
	json_t *v;

	if (json_is_string(json_object_get(r, "message"))) {
		printf("%s\n", jstr(r, "message"));
		return;
	}
	json_object_foreach(r, k, v) {
		char *text = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		printf("%s: %s\n", k, text ? text : json_string_value(v));
		free(text);
	}
}

static void print_text(const char *cmd, json_t *r)
{
	if (!strcmp(cmd, "status"))
		print_status(r);
	else if (!strcmp(cmd, "registrations"))
		print_registrations(r);
	else if (!strcmp(cmd, "messages"))
		print_messages(r);
	else if (!strcmp(cmd, "stats"))
		print_stats(r);
	else if (!strcmp(cmd, "unregister"))
		printf("removed %lld binding(s) of %s\n",
		       (long long)json_integer_value(json_object_get(r, "removed")), jstr(r, "aor"));
	else if (!strcmp(cmd, "reload"))
		printf("configuration reloaded from %s\n", jstr(r, "config"));
	else if (!strcmp(cmd, "push") && json_is_array(json_object_get(r, "pushes")))
		print_push(r);
	else if (!strcmp(cmd, "account") && json_is_array(json_object_get(r, "accounts")))
		print_accounts(r);
	else
		print_generic(r);
}

/* ---- main ---------------------------------------------------------------- */

/* Check the command's shape before bothering the daemon. */
static int check_command(int argc, char **argv)
{
	const char *c = argv[0];

	if (!strcmp(c, "status") || !strcmp(c, "stats") || !strcmp(c, "reload") ||
	    !strcmp(c, "help"))
		return argc == 1 ? 0 : -1;
	if (!strcmp(c, "registrations") || !strcmp(c, "messages"))
		return argc <= 2 ? 0 : -1;
	if (!strcmp(c, "unregister"))
		return argc == 2 ? 0 : -1;
	if (!strcmp(c, "push")) {
		if (argc < 3 || strcmp(argv[1], "test"))
			return -1;
		if (argc == 3)
			return 0;
		if (argc == 5 && !strcmp(argv[3], "--type") &&
		    (!strcmp(argv[4], "voip") || !strcmp(argv[4], "alert") ||
		     !strcmp(argv[4], "background")))
			return 0;
		return -1;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},	  {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL, *sock = NULL;
	char *sock_owned = NULL, *answer = NULL, line[ADMIN_MAX_LINE];
	char *words[16];
	int json = 0, opt, nw = 0, rc = EXIT_USAGE;
	size_t off = 0;
	json_t *doc = NULL;
	json_error_t jerr;

	while ((opt = getopt_long(argc, argv, "+c:s:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j")) {
			json = 1;
			continue;
		}
		if (nw == (int)(sizeof(words) / sizeof(words[0])) || !argv[i][0] ||
		    strpbrk(argv[i], " \t\r\n")) {
			fprintf(stderr, "sipwakectl: bad argument \"%s\"\n", argv[i]);
			return EXIT_USAGE;
		}
		words[nw++] = argv[i];
	}
	if (nw > 0 && !strcmp(words[0], "account")) {
		doc = account_run(config, nw, words, &rc);
		if (!doc) {
			if (rc == EXIT_USAGE)
				usage(stderr);
			return rc;
		}
		goto answer;
	}
	if (nw == 0 || check_command(nw, words) < 0) {
		if (nw)
			fprintf(stderr, "sipwakectl: bad command line for \"%s\"\n", words[0]);
		usage(stderr);
		return EXIT_USAGE;
	}
	for (int i = 0; i < nw; i++) {
		int n = snprintf(line + off, sizeof(line) - off, "%s%s", i ? " " : "", words[i]);
		if (n < 0 || (size_t)n >= sizeof(line) - off - 1) {
			fprintf(stderr, "sipwakectl: command too long\n");
			return EXIT_USAGE;
		}
		off += (size_t)n;
	}
	line[off++] = '\n';
	line[off] = 0;

	if (!sock) {
		sock_owned = socket_from_config(config ? config : config_default_path(), config != NULL);
		if (!sock_owned && config)
			return EXIT_CONFIG;
		sock = sock_owned ? sock_owned : DEFAULT_SOCKET;
	}
	answer = exchange(sock, line);
	if (!answer) {
		rc = EXIT_UNAVAILABLE;
		goto out;
	}
	doc = json_loads(answer, JSON_DISABLE_EOF_CHECK, &jerr);
	if (!json_is_object(doc)) {
		fprintf(stderr, "sipwakectl: unreadable answer from %s: %s\n", sock, jerr.text);
		rc = EXIT_UNAVAILABLE;
		goto out;
	}
answer:
	rc = json_is_true(json_object_get(doc, "ok")) ? 0 : EXIT_DAEMON_ERROR;
	if (json) {
		char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (text)
			printf("%s\n", text);
		free(text);
	} else if (rc == 0) {
		print_text(words[0], json_object_get(doc, "result"));
	}
	if (rc != 0)
		fprintf(stderr, "sipwakectl: %s\n", jstr(doc, "error"));
out:
	json_decref(doc);
	free(answer);
	free(sock_owned);
	if (fflush(stdout) != 0 && rc == 0)
		rc = EXIT_DAEMON_ERROR;
	return rc;
}
