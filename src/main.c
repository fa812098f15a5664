/* SPDX-License-Identifier: MIT */
/*
 * sipwaked: command line, start-up, signals and shutdown. This is the one
 * file that knows every layer: it loads the config, opens the store,
 * starts the SIP agent, wires registrar and router together, reports
 * READY=1 to systemd and runs the su_root loop until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>

#include "sipwake/admin.h"
#include "sipwake/config.h"
#include "sipwake/heap.h"
#include "sipwake/log.h"
#include "sipwake/proxy.h"
#include "sipwake/push.h"
#include "sipwake/registrar.h"
#include "sipwake/router.h"
#include "sipwake/sip.h"
#include "sipwake/stats.h"
#include "sipwake/store.h"

#define EXIT_USAGE 64
#define HEAP_TICK_MS 5000 /* how often heap_tick looks whether a burst is over */

struct daemon {
	struct sw_config cfg;
	const char *config_path;
	int cli_log_level; /* -1 = from config */
	su_root_t *root;
	struct store *store;
	struct sip_agent *sip;
	struct registrar *reg;
	struct push *push;
	struct router *router;
	struct admin *admin;
	struct admin_metrics *metrics;
	int sigfd;
	su_wait_t sigwait[1];
	int sigreg;
	int stopping;
	su_timer_t *heap_timer;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sipwaked [-c FILE] [--check] [-f|--foreground] [--log-level LEVEL]\n"
		"                [--version] [--help]\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"      --check         validate the configuration and exit\n"
		"  -f, --foreground    run in the foreground (always the case; for scripts)\n"
		"      --log-level L   error, warn, notice, info or debug (overrides log.level)\n"
		"      --version       print the version and exit\n"
		"      --help          print this help and exit\n",
		config_default_path());
}

/* Tell systemd something (READY=1, STOPPING=1, RELOADING=1) when it listens. */
static void sd_notify_msg(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len;
	int fd;

	if (!path || !path[0] || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0; /* abstract namespace */
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, (socklen_t)len) < 0)
		log_warn("sd_notify(%s) failed: %s", state, strerror(errno));
	close(fd);
}

/* The push provider says a token is dead: its binding goes (SPEC 5). */
static void token_invalid(void *ctx, const struct pn_identity *id, const char *token)
{
	char tok[LOG_TOKEN_BUFSZ];

	if (registrar_remove_pn(ctx, id, "push token rejected by the provider") < 0)
		log_info("push token %s rejected, but no binding has it any more",
			 log_token(token, tok));
}

/* Tell the registrar which providers can send (the others get 555). */
static void apply_push_support(struct daemon *d)
{
	bool enabled[PN_PROVIDER_COUNT];

	for (int i = 0; i < PN_PROVIDER_COUNT; i++)
		enabled[i] = push_provider_enabled(d->push, i);
	registrar_set_push_support(d->reg, enabled, push_vapid_public_key(d->push),
				   push_service_name(d->push));
}

static void apply_log_settings(struct daemon *d)
{
	int level = d->cli_log_level >= 0 ? d->cli_log_level : log_level_parse(d->cfg.log.level);

	if (level >= 0)
		log_set_level(level);
	if (d->sip)
		sip_agent_set_trace(d->sip, d->cfg.log.sip_trace);
}

/* SIGHUP and "sipwakectl reload": 0 when the new configuration is in force. */
static int reload(void *ctx)
{
	struct daemon *d = ctx;
	int rc = -1;

	sd_notify_msg("RELOADING=1");
	log_reopen();
	if (config_reload(&d->cfg, d->config_path) == 0) {
		apply_log_settings(d);
		if (d->push && push_reload(d->push, &d->cfg) < 0)
			log_error("push credentials not reloaded; keeping the previous ones");
		/* A provider added or removed changes which REGISTERs get 555. */
		if (d->push)
			apply_push_support(d);
		registrar_config_changed(d->reg);
		log_notice("configuration reloaded from %s", d->config_path);
		rc = 0;
	} else {
		log_error("configuration reload failed; keeping the running configuration");
	}
	sd_notify_msg("READY=1");
	return rc;
}

static int on_signal(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
	struct daemon *d = (struct daemon *)arg;
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(d);
		} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			if (!d->stopping) {
				d->stopping = 1;
				log_notice("signal %u: stopping", si.ssi_signo);
				sd_notify_msg("STOPPING=1");
				su_root_break(d->root);
			}
		}
	}
	return 0;
}

static int setup_signals(struct daemon *d)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a file size limit makes writes fail (EFBIG), not the process */
	d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0)
		return -1;
	if (su_wait_create(d->sigwait, d->sigfd, SU_WAIT_IN) < 0)
		return -1;
	d->sigreg = su_root_register(d->root, d->sigwait, on_signal, (su_wakeup_arg_t *)d, 0);
	return d->sigreg < 0 ? -1 : 0;
}

#define SHUTDOWN_DRAIN_MS 2000 /* a cluster's Redis may take this long to confirm the last writes */

static void heap_fired(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	heap_tick(sip_agent_transactions(((struct daemon *)arg)->sip));
}

static void shutdown_daemon(struct daemon *d)
{
	if (d->heap_timer)
		su_timer_destroy(d->heap_timer);
	if (d->sigreg > 0)
		su_root_deregister(d->root, d->sigreg);
	if (d->sigfd >= 0)
		close(d->sigfd);
	admin_metrics_free(d->metrics);
	admin_free(d->admin);
	if (d->reg) /* acknowledge what is committed before txns go */
		registrar_drain(d->reg, SHUTDOWN_DRAIN_MS);
	proxy_shutdown();
	router_free(d->router);
	push_free(d->push);
	registrar_exit(d->reg);
	sip_agent_free(d->sip);
	store_close(d->store);
	if (d->root)
		su_root_destroy(d->root);
	su_deinit();
	config_cleanup(&d->cfg);
	stats_cleanup();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 'C'},
		{"foreground", no_argument, NULL, 'f'},
		{"log-level", required_argument, NULL, 'L'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct daemon d = {.cli_log_level = -1, .sigfd = -1};
	int check = 0, opt, n, rc = 1;

	d.config_path = config_default_path();
	while ((opt = getopt_long(argc, argv, "c:fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			d.config_path = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'f':
			break;
		case 'L':
			d.cli_log_level = log_level_parse(optarg);
			if (d.cli_log_level < 0) {
				fprintf(stderr, "sipwaked: unknown log level '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'V':
			printf("sipwaked %s\n", SIPWAKE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sipwaked: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}

	if (config_load(&d.cfg, d.config_path) < 0)
		return CONFIG_EXIT_ERROR;
	if (check) {
		printf("config OK\n");
		config_cleanup(&d.cfg);
		return 0;
	}
	log_set_timestamps(getenv("JOURNAL_STREAM") == NULL);
	apply_log_settings(&d);
	log_notice("sipwaked %s starting (%s mode, config %s)", SIPWAKE_VERSION,
		   config_standalone(&d.cfg) ? "standalone" : "gateway", d.config_path);

	stats_declare_core();
	if (su_init() != 0) {
		fprintf(stderr, "sipwaked: cannot initialise sofia-sip\n");
		config_cleanup(&d.cfg);
		stats_cleanup();
		return 1;
	}
	d.root = su_root_create(NULL);
	if (!d.root) {
		log_error("cannot create the event loop");
		goto out;
	}
	if (setup_signals(&d) < 0) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		goto out;
	}
	if (store_open(&d.store, d.cfg.storage.database) < 0 ||
	    store_attach_cluster(d.store, d.root, &d.cfg) < 0)
		goto out; /* reason logged */
	if (sip_agent_create(&d.sip, d.root, &d.cfg) < 0)
		goto out;
	if (registrar_new(&d.reg, d.sip, d.store) < 0) {
		log_error("cannot create the registrar");
		goto out;
	}
	n = registrar_load(d.reg);
	if (n < 0)
		goto out;
	log_info("%d binding(s) loaded from %s", n,
		 store_clustered(d.store) ? "Redis" : d.cfg.storage.database);
	if (push_new(&d.push, d.root, &d.cfg) < 0)
		goto out; /* reason logged */
	push_set_token_invalid_cb(d.push, token_invalid, d.reg);
	apply_push_support(&d);
	if (router_new(&d.router, d.sip, d.reg, d.push, d.store) < 0) {
		log_error("cannot create the router");
		goto out;
	}
	sip_agent_set_handler(d.sip, router_handle, d.router);
	if (admin_new(&d.admin, d.root, &d.cfg, d.reg, d.store) < 0)
		goto out;
	admin_set_reload(d.admin, reload, &d);
	admin_attach_router(d.admin, d.router);
	if (admin_attach_push(d.admin, d.push) < 0)
		goto out;
	if (admin_metrics_new(&d.metrics, d.root, d.cfg.admin.metrics_listen) < 0)
		goto out;
	apply_log_settings(&d);
	/* Only now the ports: nothing was bound while the bindings loaded. */
	if (sip_agent_listen(d.sip) < 0)
		goto out;
	/* the other nodes of a cluster hand requests for our phones to this */
	store_set_hop(d.store, sip_agent_uri(d.sip, "tcp"));

	/* after a storm, what its transactions took goes back to the system */
	d.heap_timer = su_timer_create(su_root_task(d.root), HEAP_TICK_MS);
	if (d.heap_timer)
		su_timer_set_for_ever(d.heap_timer, heap_fired, (su_timer_arg_t *)&d);
	sd_notify_msg("READY=1");
	log_notice("ready");
	su_root_run(d.root);
	rc = 0;
	log_notice("stopped");
out:
	shutdown_daemon(&d);
	return rc;
}
