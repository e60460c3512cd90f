/*
 * cli: argv -> TaskConfig -> task, and Error -> message + exit code.
 *
 * Every command reads the same options (a command ignores the ones it has no
 * use for); the task file is read first, wherever --config stands, and each
 * other option overrides it in order.
 */
#include "cmd/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "cmd/task.h"
#include "cutover/cutover.h"
#include "load/shards.h"
#include "route/shard.h"
#include "verify/check.h"
#include "verify/validate.h"

typedef bool (*CommandFn)(const TaskConfig *cfg, atomic_int *stop, Error *err);

typedef struct Command
{
	const char *name;
	const char *summary; /* one line for pgtide --help */
	const char *usage;   /* first lines of pgtide NAME --help */
	CommandFn run;
	bool needs_source;   /* status can do without the source */
	bool records_error;  /* a failure is noted in the task's state */
	bool announces_slot; /* a slot left on the source is named last */
	bool selects_tables; /* reads table_mappings, before anything else */
} Command;

static const Command commands[] = {
    {"check", "say what would not migrate, and why, before anything changes",
     "pgtide check reads the source and the target and reports every "
     "finding, one\n"
     "per line with its severity (blocker, warning, info), why it matters "
     "and how\n"
     "to fix it; --json for machines. It changes nothing. Exit 6 when there "
     "is a\n"
     "blocker. pgtide migrate runs it first.\n",
     check_command, true, false, false, true},
    {"copy", "full load: schema, consistent parallel copy, indexes, sequences",
     "pgtide copy loads the schema and every row of the source database into "
     "the\n"
     "target, consistent as of one instant, then builds indexes and "
     "constraints.\n"
     "Run it again with the same task name to resume. It leaves no "
     "replication slot\n"
     "on the source, so a copied task cannot be followed later: to load "
     "and then\n"
     "follow the source's changes, run pgtide migrate instead.\n",
     task_copy, true, true, true, true},
    {"migrate", "full load, then follow the source's changes until stopped",
     "pgtide migrate runs pgtide check (a blocker stops it), runs the\n"
     "full load (or resumes it), then applies the source's changes to the "
     "target\n"
     "until SIGINT or SIGTERM. Run it again to resume where it stopped.\n",
     task_migrate, true, true, true, true},
    {"follow", "apply the source's changes from the task's slot until stopped",
     "pgtide follow applies the source's changes from the task's slot (or "
     "from\n"
     "--slot and --start-lsn) to the target, until SIGINT or SIGTERM.\n",
     task_follow, true, true, true, true},
    {"status", "show a task's progress, lag and last error",
     "pgtide status reads the task's state in the target (and, with "
     "--source,\n"
     "its slot on the source) and prints which process runs the task, "
     "phase,\n"
     "tables, lag and rates, and the last error; --json for machines. It "
     "changes\n"
     "nothing.\n",
     task_status, false, false, false, false},
    {"validate", "compare source and target rows by ranged hashes",
     "pgtide validate compares the task's tables on source and target: "
     "counts and\n"
     "order-independent hashes per key range, computed in each database, "
     "ranges\n"
     "that differ split until the differing rows are named. Exit 7 when "
     "rows\n"
     "differ. Safe while the task follows the source.\n",
     validate_command, true, false, false, true},
    {"cutover", "fence the source's writes, drain, sync sequences, hand over",
     "pgtide cutover talks to the running pgtide migrate of the task: waits "
     "for\n"
     "low lag, fences writes on the source, waits until every write before "
     "the\n"
     "fence is applied, sets the target's sequences, validates, stops the "
     "stream\n"
     "and prints the write-downtime window. A failure before the stream "
     "stops\n"
     "undoes the fence and leaves the task replicating.\n",
     cutover_command, true, false, false, true},
    {"clean", "drop the task's slot, publication, origin and state",
     "pgtide clean drops what pgtide made for the task: the replication slot "
     "and\n"
     "publication on the source, the replication origin and the task's state "
     "on\n"
     "the target. It refuses while the task runs (unless --force) and is safe "
     "to\n"
     "run twice.\n",
     task_clean, true, false, false, false},
};

#define NCOMMANDS ((int) (sizeof(commands) / sizeof(commands[0])))

static void
usage_main(FILE *out)
{
	fprintf(out, "pgtide migrates a live PostgreSQL database to another "
	             "server.\n\nUsage:\n  pgtide COMMAND [OPTIONS]\n\n"
	             "Commands:\n");
	for (int i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nOptions:\n"
	             "  -V, --version  print the version and exit\n"
	             "  -h, --help     show this help and exit\n\n"
	             "Run \"pgtide COMMAND --help\" for a command's options.\n");
}

static void
usage_command(const Command *c, FILE *out)
{
	fprintf(out,
	        "%s\nUsage:\n  pgtide %s --source URI --target URI "
	        "[OPTIONS]\n\n",
	        c->usage, c->name);
	fprintf(
	    out,
	    "Connections and task:\n"
	    "  -s, --source=URI          source database (libpq URI or conninfo)\n"
	    "  -d, --target=URI          target database\n"
	    "  -n, --task=NAME           task name, [a-z0-9_] (default: default)\n"
	    "  -c, --config=FILE         task file (YAML or JSON); options "
	    "override it\n"
	    "\n"
	    "What moves:\n"
	    "  -t, --table=PATTERN       include tables matching schema.table (* "
	    "and ?);\n"
	    "                            repeatable (default: every table)\n"
	    "  -T, --exclude-table=PATTERN  exclude matching tables; repeatable\n"
	    "      --table-mappings=FILE  select tables by an AWS DMS "
	    "table-mapping\n"
	    "                            file's selection rules (not with -t, -T)\n"
	    "      --schema=MODE         create (from pg_dump, default) or "
	    "existing\n"
	    "      --on-existing=WHAT    refuse (default), truncate (existing "
	    "mode),\n"
	    "                            or drop (create mode)\n"
	    "\n"
	    "Full load:\n"
	    "  -j, --jobs=N              parallel copy workers (default: 4)\n"
	    "  -J, --index-jobs=N        parallel index builders (default: 2)\n"
	    "      --split-tables-larger-than=SIZE  cut larger tables into "
	    "chunks\n"
	    "                            (default: auto, a fair share; 0 never "
	    "splits)\n"
	    "      --format=FORMAT       auto (default), text or binary\n"
	    "      --pg-dump=PATH        pg_dump to use (default: newest "
	    "installed)\n"
	    "\n"
	    "Change stream (migrate, follow):\n"
	    "      --memory-limit=SIZE   transactions buffered in memory before "
	    "they\n"
	    "                            spill to disk (default: 256MB)\n"
	    "      --spill-dir=DIR       where they spill (default: $TMPDIR or "
	    "/tmp)\n"
	    "      --on-conflict=WHAT    stop (default), skip or upsert when a "
	    "row is\n"
	    "                            missing or already there on the target\n"
	    "      --unknown-tables=WHAT stop (default) or ignore a change of a "
	    "table\n"
	    "                            the task does not move\n"
	    "      --slot=NAME           follow: stream this slot (default: the "
	    "task's)\n"
	    "      --start-lsn=LSN       follow: start here when the target has "
	    "no\n"
	    "                            position yet\n"
	    "      --publication=NAME    follow: the publication to stream "
	    "(default:\n"
	    "                            the task's)\n"
	    "\n"
	    "Check, validate, cutover:\n"
	    "      --skip-check=ID       check: the finding ID does not stop "
	    "migrate;\n"
	    "                            repeatable\n"
	    "      --wal-free-space=SIZE check: disk free for WAL on the source\n"
	    "      --wal-sample=MS       check: measure the source's WAL rate over "
	    "MS\n"
	    "                            milliseconds (default: 1000)\n"
	    "      --tables=PATTERNS     validate: only these tables "
	    "(comma-separated)\n"
	    "      --sample=FRACTION     validate: check this fraction of each "
	    "table's\n"
	    "                            ranges (0.1 or 10%%)\n"
	    "      --fence=METHOD        cutover: revoke (default), read_only or "
	    "command\n"
	    "      --fence-role=ROLE     cutover: a role whose writes are fenced; "
	    "repeatable\n"
	    "      --fence-command=CMD   cutover: shell command that fences "
	    "writes\n"
	    "      --unfence-command=CMD cutover: shell command that undoes it\n"
	    "      --max-lag=SIZE        cutover: wait for lag below this "
	    "(default: 16MB)\n"
	    "      --timeout=SECONDS     cutover: bound on each wait (default: "
	    "300)\n"
	    "      --sequence-margin=N   cutover: added to each sequence "
	    "(default: 1000)\n"
	    "      --final-validation=WHAT  cutover: none, counts (default) or "
	    "full\n"
	    "      --diverged=WHAT       cutover: a keyless table that saw an "
	    "UPDATE or\n"
	    "                            DELETE: refuse (default) or recopy "
	    "while fenced\n"
	    "      --dropped-tables=WHAT  cutover: a table dropped on the source "
	    "since\n"
	    "                            the load: refuse (default), drop or "
	    "keep it\n"
	    "      --sequence-spacing=HOW  cutover with several targets: none "
	    "(default),\n"
	    "                            or modulo (target k of n: values = k "
	    "mod n)\n"
	    "\n"
	    "Observing (copy, migrate, follow):\n"
	    "      --http=[ADDR:]PORT    serve /metrics, /status, /healthz, "
	    "/readyz and\n"
	    "                            a dashboard at / (ADDR default: "
	    "127.0.0.1)\n"
	    "\n"
	    "Other:\n"
	    "      --state-schema=NAME   state schema on the target (default: "
	    "pgtide)\n"
	    "      --progress-interval=SECONDS  progress log period (default: "
	    "10)\n"
	    "      --log-format=FORMAT   text (default) or json\n"
	    "      --json                status, check, validate: print JSON\n"
	    "      --force               clean: end the running task's session "
	    "first\n"
	    "  -v, --verbose             more log lines\n"
	    "  -q, --quiet               warnings and errors only\n"
	    "  -h, --help                show this help and exit\n"
	    "\n"
	    "Exit codes: 0 done, 1 internal error, 2 usage or task file, 3 "
	    "source,\n"
	    "4 target, 5 interrupted (run again to resume), 6 check found a "
	    "blocker,\n"
	    "7 validate found differences, 8 another process runs the task,\n"
	    "9 a guard stopped the task to protect the source (or the source\n"
	    "invalidated its slot): start it anew.\n");
}

static int
exit_code(ErrKind kind)
{
	switch (kind)
	{
		case ERR_NONE:
			return CLI_EXIT_OK;
		case ERR_USAGE:
		case ERR_CONFIG:
			return CLI_EXIT_USAGE;
		case ERR_SOURCE:
			return CLI_EXIT_SOURCE;
		case ERR_TARGET:
			return CLI_EXIT_TARGET;
		case ERR_INTERRUPTED:
			return CLI_EXIT_INTERRUPTED;
		case ERR_INTERNAL:
			return CLI_EXIT_INTERNAL;
		case ERR_BLOCKED:
			return CLI_EXIT_BLOCKED;
		case ERR_DIFFERENT:
			return CLI_EXIT_DIFFERENT;
		case ERR_BUSY:
			return CLI_EXIT_BUSY;
		case ERR_GUARD:
			return CLI_EXIT_GUARD;
	}
	return CLI_EXIT_INTERNAL;
}

static int
report(const Command *c, const Error *err)
{
	char line[ERR_MSG_MAX + 32];

	/* log_plain: with --log-format json these are JSON lines too */
	if (err->kind == ERR_INTERRUPTED && c != NULL && c->records_error)
		log_plain(LOG_LEVEL_INFO, "pgtide: interrupted; progress is saved, "
		                          "run the same command again to resume");
	else
	{
		snprintf(line, sizeof(line), "pgtide: error: %s", err->message);
		log_plain(LOG_LEVEL_ERROR, line);
		if (err->detail[0])
		{
			snprintf(line, sizeof(line), "DETAIL: %s", err->detail);
			log_plain(LOG_LEVEL_ERROR, line);
		}
		if (err->hint[0])
		{
			snprintf(line, sizeof(line), "HINT: %s", err->hint);
			log_plain(LOG_LEVEL_ERROR, line);
		}
	}
	return exit_code(err->kind);
}

enum
{
	OPT_SCHEMA = 256,
	OPT_ON_EXISTING,
	OPT_SPLIT,
	OPT_FORMAT,
	OPT_PG_DUMP,
	OPT_STATE_SCHEMA,
	OPT_PROGRESS,
	OPT_LOG_FORMAT,
	OPT_MEMORY,
	OPT_SPILL_DIR,
	OPT_ON_CONFLICT,
	OPT_UNKNOWN_TABLES,
	OPT_SLOT,
	OPT_START_LSN,
	OPT_JSON,
	OPT_PUBLICATION,
	OPT_FORCE,
	OPT_SKIP_CHECK,
	OPT_WAL_FREE,
	OPT_WAL_SAMPLE,
	OPT_TABLES,
	OPT_SAMPLE,
	OPT_FENCE,
	OPT_FENCE_ROLE,
	OPT_FENCE_CMD,
	OPT_UNFENCE_CMD,
	OPT_MAX_LAG,
	OPT_TIMEOUT,
	OPT_MARGIN,
	OPT_FINAL_VALIDATION,
	OPT_DIVERGED,
	OPT_DROPPED,
	OPT_SPACING,
	OPT_HTTP,
	OPT_TABLE_MAPPINGS,
};

/* Each option and the task-file key it sets (NULL: it sets none). */
typedef struct OptionKey
{
	struct option opt;
	const char *key;
} OptionKey;

static const OptionKey options[] = {
    {{"source", required_argument, NULL, 's'}, "source"},
    {{"target", required_argument, NULL, 'd'}, "target"},
    {{"task", required_argument, NULL, 'n'}, "task"},
    {{"config", required_argument, NULL, 'c'}, NULL},
    {{"table", required_argument, NULL, 't'}, "tables.include"},
    {{"exclude-table", required_argument, NULL, 'T'}, "tables.exclude"},
    {{"table-mappings", required_argument, NULL, OPT_TABLE_MAPPINGS},
     "table_mappings"},
    {{"jobs", required_argument, NULL, 'j'}, "copy.jobs"},
    {{"index-jobs", required_argument, NULL, 'J'}, "copy.index_jobs"},
    {{"schema", required_argument, NULL, OPT_SCHEMA}, "schema.mode"},
    {{"on-existing", required_argument, NULL, OPT_ON_EXISTING},
     "schema.on_existing"},
    {{"split-tables-larger-than", required_argument, NULL, OPT_SPLIT},
     "copy.split_tables_larger_than"},
    {{"format", required_argument, NULL, OPT_FORMAT}, "copy.format"},
    {{"pg-dump", required_argument, NULL, OPT_PG_DUMP}, "schema.pg_dump"},
    {{"state-schema", required_argument, NULL, OPT_STATE_SCHEMA},
     "state.schema"},
    {{"progress-interval", required_argument, NULL, OPT_PROGRESS},
     "progress.interval"},
    {{"memory-limit", required_argument, NULL, OPT_MEMORY}, "cdc.memory_limit"},
    {{"spill-dir", required_argument, NULL, OPT_SPILL_DIR}, "cdc.spill_dir"},
    {{"on-conflict", required_argument, NULL, OPT_ON_CONFLICT},
     "cdc.on_conflict"},
    {{"unknown-tables", required_argument, NULL, OPT_UNKNOWN_TABLES},
     "cdc.unknown_tables"},
    {{"slot", required_argument, NULL, OPT_SLOT}, "cdc.slot"},
    {{"start-lsn", required_argument, NULL, OPT_START_LSN}, "cdc.start_lsn"},
    {{"publication", required_argument, NULL, OPT_PUBLICATION},
     "cdc.publication"},
    {{"skip-check", required_argument, NULL, OPT_SKIP_CHECK}, "check.skip"},
    {{"wal-free-space", required_argument, NULL, OPT_WAL_FREE},
     "check.wal_free_space"},
    {{"wal-sample", required_argument, NULL, OPT_WAL_SAMPLE},
     "check.wal_sample"},
    {{"tables", required_argument, NULL, OPT_TABLES}, "validate.tables"},
    {{"sample", required_argument, NULL, OPT_SAMPLE}, "validate.sample"},
    {{"fence", required_argument, NULL, OPT_FENCE}, "cutover.fence"},
    {{"fence-role", required_argument, NULL, OPT_FENCE_ROLE}, "cutover.roles"},
    {{"fence-command", required_argument, NULL, OPT_FENCE_CMD},
     "cutover.fence_command"},
    {{"unfence-command", required_argument, NULL, OPT_UNFENCE_CMD},
     "cutover.unfence_command"},
    {{"max-lag", required_argument, NULL, OPT_MAX_LAG}, "cutover.max_lag"},
    {{"timeout", required_argument, NULL, OPT_TIMEOUT}, "cutover.timeout"},
    {{"sequence-margin", required_argument, NULL, OPT_MARGIN},
     "cutover.sequence_margin"},
    {{"final-validation", required_argument, NULL, OPT_FINAL_VALIDATION},
     "cutover.validate"},
    {{"diverged", required_argument, NULL, OPT_DIVERGED}, "cutover.diverged"},
    {{"dropped-tables", required_argument, NULL, OPT_DROPPED},
     "cutover.dropped_tables"},
    {{"sequence-spacing", required_argument, NULL, OPT_SPACING},
     "cutover.sequence_spacing"},
    {{"http", required_argument, NULL, OPT_HTTP}, "http.listen"},
    {{"log-format", required_argument, NULL, OPT_LOG_FORMAT}, NULL},
    {{"json", no_argument, NULL, OPT_JSON}, NULL},
    {{"force", no_argument, NULL, OPT_FORCE}, NULL},
    {{"verbose", no_argument, NULL, 'v'}, NULL},
    {{"quiet", no_argument, NULL, 'q'}, NULL},
    {{"help", no_argument, NULL, 'h'}, NULL},
};

#define NOPTIONS ((int) (sizeof(options) / sizeof(options[0])))

static const char short_options[] = "s:d:n:c:t:T:j:J:vqh";

bool
cli_option_takes_value(const char *name)
{
	if (strncmp(name, "--", 2) == 0)
	{
		for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
			if (strcmp(options[i].opt.name, name + 2) == 0)
				return options[i].opt.has_arg != no_argument;
		return false;
	}
	if (name[0] == '-' && name[1] != '\0' && name[1] != ':')
	{
		const char *p = strchr(short_options, name[1]);

		return p != NULL && p[1] == ':';
	}
	return false;
}

static const OptionKey *
option_of(int val)
{
	for (int i = 0; i < NOPTIONS; i++)
		if (options[i].opt.val == val)
			return &options[i];
	return NULL;
}

/* Sets a list key once per comma-separated item of value. */
static bool
set_each(TaskConfig *cfg, const char *key, const char *value,
         const char *origin, Error *err)
{
	char item[1024];

	while (*value != '\0')
	{
		size_t len = strcspn(value, ",");

		if (len >= sizeof(item))
			return err_set(err, ERR_USAGE, "%s: item too long", origin);
		memcpy(item, value, len);
		item[len] = '\0';
		if (len > 0 && !config_set(cfg, key, item, origin, err))
			return false;
		value += len + (value[len] == ',');
	}
	return true;
}

/*
 * Reads a command's options into cfg: the task file first, wherever --config
 * appears, then every other option over it, in order.
 */
static bool
parse_options(int argc, char **argv, const char *cmd,
              const struct option *longopts, TaskConfig *cfg, bool *help,
              bool again, Error *err)
{
	const char *config_path = NULL;
	LogLevel level = LOG_LEVEL_INFO;
	bool json = false;
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, short_options, longopts, NULL)) != -1)
	{
		if (opt == 'c')
			config_path = optarg;
		else if (opt == 'h')
			*help = true;
		else if (opt == '?' || opt == ':')
		{
			if (optopt != 0)
				err_set(err, ERR_USAGE, "invalid or incomplete option -%c",
				        optopt);
			else
				err_set(err, ERR_USAGE, "invalid option \"%s\"",
				        argv[optind - 1]);
			return err_hint(err, "run \"pgtide %s --help\" for the options",
			                cmd);
		}
	}
	if (*help)
		return true;
	if (optind < argc)
	{
		err_set(err, ERR_USAGE, "unexpected argument \"%s\"", argv[optind]);
		return err_hint(err, "run \"pgtide %s --help\" for the options", cmd);
	}
	if (config_path != NULL && !config_load_file(cfg, config_path, err))
		return false;
	optind = 1;
	while ((opt = getopt_long(argc, argv, short_options, longopts, NULL)) != -1)
	{
		const OptionKey *o = option_of(opt);
		char origin[64];

		if (o != NULL && o->key != NULL)
		{
			snprintf(origin, sizeof(origin), "option --%s", o->opt.name);
			if (!(opt == OPT_TABLES
			          ? set_each(cfg, o->key, optarg, origin, err)
			          : config_set(cfg, o->key, optarg, origin, err)))
				return false;
		}
		else if (opt == 'v')
			level = LOG_LEVEL_DEBUG;
		else if (opt == 'q')
			level = LOG_LEVEL_WARN;
		else if (opt == OPT_JSON)
			cfg->output_json = true;
		else if (opt == OPT_FORCE)
			cfg->force = true;
		else if (opt == OPT_LOG_FORMAT)
		{
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0)
				return err_set(err, ERR_USAGE,
				               "option --log-format: invalid value \"%s\"; "
				               "valid values are text, json",
				               optarg);
			json = strcmp(optarg, "json") == 0;
		}
	}
	if (!again) /* a reread changes settings, never the log */
	{
		log_configure(level, json);
		log_set_task(cfg->task);
	}
	return true;
}

/* The running command, for cli_reread (SIGHUP). */
static struct
{
	int argc;
	char **argv;
	const Command *command;
	const struct option *longopts;
	atomic_int *reload;
	const char *target_uri; /* several targets: the one worked on now */
	atomic_int rereads;
	char **program_argv; /* main's, for a process per target (fanout.c) */
} running;

bool
cli_reload_pending(void)
{
	return running.reload != NULL && atomic_exchange(running.reload, 0) != 0;
}

static bool one_target(TaskConfig *cfg, const ShardSpec *spec, const char *name,
                       Error *err);

bool
cli_reread(TaskConfig *cfg, Error *err)
{
	bool help = false;

	if (running.command == NULL)
		return err_set(err, ERR_INTERNAL, "no command runs");
	/* the rules a mapping file holds are part of the selection the running
	   task compares against: read them as the start did */
	if (!parse_options(running.argc, running.argv, running.command->name,
	                   running.longopts, cfg, &help, true, err) ||
	    (running.command->selects_tables &&
	     !config_read_table_mappings(cfg, err)))
		return false;
	/* a process of one target compares its own share of the file */
	if (getenv(SHARD_TARGET_ENV) != NULL && cfg->targets.keys.count > 0)
	{
		ShardSpec *spec = NULL;
		bool ok = shard_spec_new(cfg, &spec, err) &&
		          one_target(cfg, spec, getenv(SHARD_TARGET_ENV), err);

		shard_spec_free(spec);
		if (!ok)
			return false;
	}
	else if (running.target_uri != NULL && cfg->targets.keys.count > 0 &&
	         cfg->target_uri == NULL)
	{
		cfg->target_uri = strdup(running.target_uri);
		if (cfg->target_uri == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
	}
	atomic_fetch_add(&running.rereads, 1);
	return true;
}

void
cli_running_target(const char *uri)
{
	running.target_uri = uri;
}

int
cli_rereads(void)
{
	return atomic_load(&running.rereads);
}

/*
 * Several targets (targets:, docs/sharding.md): the routing rules are
 * checked whole, so that a bad one is named before anything connects; check,
 * copy, migrate and validate then connect to the source and every target
 * and route each selected table, so that a table, rule, column or target
 * that cannot work is named before any data moves (check prints the
 * routing). copy, migrate, validate, cutover, status and clean get the
 * rules in *run_spec (the caller frees them); a command that cannot route rows to
 * several targets yet refuses, since running it against one of them would
 * ignore the others. A process migrating one target for its parent skips
 * the preflight its parent ran.
 */
static bool
check_targets(const Command *c, const TaskConfig *cfg, ShardSpec **run_spec,
              Error *err)
{
	ShardSpec *spec;
	ShardsPlan *plan = NULL;
	/* the commands built for several targets */
	bool built =
	    strcmp(c->name, "copy") == 0 || strcmp(c->name, "validate") == 0 ||
	    strcmp(c->name, "status") == 0 || strcmp(c->name, "clean") == 0 ||
	    strcmp(c->name, "migrate") == 0 || strcmp(c->name, "cutover") == 0 ||
	    strcmp(c->name, "check") == 0 || strcmp(c->name, "follow") == 0;
	/* a process of one target runs after its parent's preflight */
	bool preflight =
	    (strcmp(c->name, "copy") == 0 || strcmp(c->name, "validate") == 0 ||
	     strcmp(c->name, "check") == 0 || strcmp(c->name, "migrate") == 0) &&
	    getenv(SHARD_TARGET_ENV) == NULL;

	*run_spec = NULL;
	if (cfg->targets.keys.count == 0 &&
	    cfg->cutover_spacing != SEQUENCE_SPACING_NONE)
	{
		err_set(err, ERR_CONFIG,
		        "cutover.sequence_spacing spaces the sequences of several "
		        "targets, and the task has one");
		return err_hint(err, "leave it out, or name the targets under "
		                     "targets:");
	}
	if (cfg->targets.keys.count == 0)
		return true;
	if (!shard_spec_new(cfg, &spec, err))
		return false;
	/* copy and migrate route every row themselves, and stop at one of no
	   target: only check and validate read the rows for them first */
	if (preflight && !shards_preflight(cfg, spec,
	                                   strcmp(c->name, "check") == 0 ||
	                                       strcmp(c->name, "validate") == 0,
	                                   &plan, err))
	{
		shard_spec_free(spec);
		return false;
	}
	if (plan != NULL && strcmp(c->name, "check") == 0 && !cfg->output_json)
		shards_plan_print(plan, spec, stdout);
	shards_plan_free(plan);
	if (built)
	{
		*run_spec = spec;
		return true;
	}
	shard_spec_free(spec);
	err_set(err, ERR_CONFIG, "pgtide %s cannot use several targets yet",
	        c->name);
	return err_hint(err, "docs/sharding.md says what is built");
}

/*
 * pgtide validate with several targets: each target against its share of
 * the source, in turn; every target is compared even when one differs, and
 * the error counts those that do.
 */
static bool
validate_shards(const TaskConfig *cfg, const ShardSpec *spec, atomic_int *stop,
                Error *err)
{
	int n = shard_spec_ntargets(spec);
	int differ = 0;

	for (int i = 0; i < n; i++)
	{
		TaskConfig one;
		Error terr = ERR_INIT;
		bool ok;

		if (!task_target_config(cfg, spec, i, &one, err))
			return false;
		memset(&one.targets, 0, sizeof(one.targets));
		if (!cfg->output_json)
			printf("target %s:\n", shard_spec_target_name(spec, i));
		fflush(stdout);
		ok = validate_command_shard(&one, spec, i, stop, &terr);
		task_target_config_free(&one);
		if (ok)
			continue;
		if (terr.kind != ERR_DIFFERENT)
		{
			*err = terr;
			return err_prefix(err,
			                  "target %s: ", shard_spec_target_name(spec, i));
		}
		log_error("target %s: %s", shard_spec_target_name(spec, i),
		          terr.message);
		differ++;
	}
	if (differ == 0)
		return true;
	err_set(err, ERR_DIFFERENT,
	        "%d of %d targets differ from their share of the source", differ,
	        n);
	return err_hint(err, "the differing rows are listed above, and in each "
	                     "target's validation_differences");
}

/*
 * Whether this process names the task's slot left on the source: a slot
 * per target by its target's process; the one slot of several targets
 * (decision 0043) once, by the first process, after its targets' ended.
 */
static bool
names_slot(const TaskConfig *cfg, bool several)
{
	bool one_slot = cfg->shard_slot == SHARD_SLOT_ONE;

	if (several)
		return one_slot;
	return cfg->shard_target == NULL || !one_slot;
}

/*
 * This process works on the target of spec named `name`, for its parent
 * (fanout.c): cfg becomes that target's single-target task, its tables
 * filtered to its share. At start, and on each reread (SIGHUP), so that the
 * two compare alike.
 */
static bool
one_target(TaskConfig *cfg, const ShardSpec *spec, const char *name, Error *err)
{
	int i = 0;

	while (i < shard_spec_ntargets(spec) &&
	       strcmp(shard_spec_target_name(spec, i), name) != 0)
		i++;
	if (i == shard_spec_ntargets(spec))
		return err_set(err, ERR_USAGE,
		               "%s names \"%s\", which is no target of the task file",
		               SHARD_TARGET_ENV, name);
	free(cfg->target_uri);
	free(cfg->http_listen);
	cfg->http_listen = NULL;
	cfg->target_uri = strdup(shard_spec_target_uri(spec, i));
	cfg->shard_target = strdup(name);
	if (cfg->target_uri == NULL || cfg->shard_target == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!shards_route_as_filters(cfg, spec, i, err))
		return err_prefix(err, "target %s: ", name);
	return true;
}

/*
 * check, status and clean with several targets: the command on each target
 * in turn, each under a "target NAME:" line; a target that fails does not
 * stop the others, and the first failure is the command's. With --json,
 * check and status print one document, each target's document under its
 * name in "targets" ({"error": MESSAGE} for one that could not print
 * its own).
 */
static bool
each_target(const Command *c, const TaskConfig *cfg, const ShardSpec *spec,
            atomic_int *stop, Error *err)
{
	bool ok = true,
	     json = cfg->output_json && (strcmp(c->name, "status") == 0 ||
	                                 strcmp(c->name, "check") == 0);

	if (json)
	{
		printf("{\"task\":");
		json_write_string(stdout, cfg->task);
		printf(",\"targets\":{");
	}
	for (int i = 0; i < shard_spec_ntargets(spec); i++)
	{
		TaskConfig one;
		Error terr = ERR_INIT;
		const char *name = shard_spec_target_name(spec, i);

		if (!task_target_config(cfg, spec, i, &one, err))
			return false;
		if (json)
		{
			printf("%s", i > 0 ? "," : "");
			json_write_string(stdout, name);
			printf(":");
		}
		else
			printf("target %s:\n", name);
		fflush(stdout);
		if (!c->run(&one, stop, &terr))
		{
			/* a check that found blockers printed its document */
			if (json && terr.kind != ERR_BLOCKED)
			{
				printf("{\"error\":");
				json_write_string(stdout, terr.message);
				printf("}");
			}
			log_error("target %s: %s", name, terr.message);
			if (ok)
			{
				*err = terr;
				err_prefix(err, "target %s: ", name);
			}
			ok = false;
		}
		fflush(stdout);
		task_target_config_free(&one);
	}
	if (json)
		printf("}}\n");
	fflush(stdout);
	return ok;
}

/*
 * cutover with several targets: each target's share as its migrate
 * process sees it (one_target), then one cutover of them all.
 */
static bool
cutover_shards(const TaskConfig *cfg, const ShardSpec *spec, atomic_int *stop,
               Error *err)
{
	int made = 0;
	TaskConfig *ones = task_target_configs(cfg, spec, true, &made, err);
	bool ok = ones != NULL && cutover_run(cfg, ones, made, stop, err);

	task_target_configs_free(ones, made);
	return ok;
}

/* A command of a task with several targets. */
static bool
run_on_targets(const Command *c, const TaskConfig *cfg, const ShardSpec *spec,
               atomic_int *stop, Error *err)
{
	if (strcmp(c->name, "migrate") == 0 || strcmp(c->name, "follow") == 0)
		return task_shards(cfg, spec, strcmp(c->name, "migrate") == 0,
		                   running.program_argv, stop, err);
	if (strcmp(c->name, "validate") == 0)
		return validate_shards(cfg, spec, stop, err);
	if (strcmp(c->name, "copy") == 0)
		return task_copy_shards(cfg, spec, stop, err);
	if (strcmp(c->name, "cutover") == 0)
		return cutover_shards(cfg, spec, stop, err);
	return each_target(c, cfg, spec, stop, err);
}

static int
run_command(const Command *c, int argc, char **argv, atomic_int *stop)
{
	struct option longopts[NOPTIONS + 1];
	TaskConfig cfg;
	Error err = ERR_INIT;
	ShardSpec *shards = NULL; /* a command built for several targets */
	bool help = false;
	int code;

	for (int i = 0; i < NOPTIONS; i++)
		longopts[i] = options[i].opt;
	memset(&longopts[NOPTIONS], 0, sizeof(longopts[NOPTIONS]));
	config_init(&cfg);
	if (!parse_options(argc, argv, c->name, longopts, &cfg, &help, false, &err))
		code = report(c, &err);
	else if (help)
	{
		usage_command(c, stdout);
		code = CLI_EXIT_OK;
	}
	else if (c->needs_source
	             ? !config_validate(&cfg, &err) ||
	                   (c->selects_tables &&
	                    !config_read_table_mappings(&cfg, &err)) ||
	                   !check_targets(c, &cfg, &shards, &err)
	             : !check_targets(c, &cfg, &shards, &err) ||
	                   (shards == NULL && cfg.target_uri == NULL &&
	                    (err_set(&err, ERR_CONFIG, "no target given"),
	                     err_hint(&err, "pass --target URI or set "
	                                    "target in the task file"),
	                     true)))
		code = report(c, &err);
	else
	{
		const char *one = getenv(SHARD_TARGET_ENV);
		bool ok = true;

		running.argc = argc;
		running.argv = argv;
		running.command = c;
		running.longopts = longopts;
		if (shards != NULL && one != NULL &&
		    (strcmp(c->name, "migrate") == 0 || strcmp(c->name, "follow") == 0))
		{
			/* a process of one target: from here on, that target's task */
			log_set_scope(one);
			ok = one_target(&cfg, shards, one, &err);
			shard_spec_free(shards);
			shards = NULL;
		}
		if (ok)
			ok = shards == NULL ? c->run(&cfg, stop, &err)
			                    : run_on_targets(c, &cfg, shards, stop, &err);
		running.command = NULL;

		/* with several targets the error names its target, and no one
		   target's state holds the whole task's */
		if (!ok && c->records_error && shards == NULL)
			task_note_error(&cfg, &err);
		code = ok ? CLI_EXIT_OK : report(c, &err);
		/* last: nothing may hide a slot that holds the source's WAL (copy
		   keeps none, with one target or several) */
		if (c->announces_slot && names_slot(&cfg, shards != NULL))
			task_slot_notice(&cfg, c->name, !ok, *stop != 0,
			                 err.kind == ERR_GUARD, argc, argv);
	}
	shard_spec_free(shards);
	config_free(&cfg);
	return code;
}

int
cli_main(int argc, char **argv, atomic_int *stop, atomic_int *reload)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	running.program_argv = argv;
	if (cmd == NULL)
	{
		usage_main(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0)
	{
		usage_main(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
	{
		printf("pgtide %s\n", PGTIDE_VERSION);
		return CLI_EXIT_OK;
	}
	running.reload = reload;
	for (int i = 0; i < NCOMMANDS; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return run_command(&commands[i], argc - 1, argv + 1, stop);
	fprintf(stderr, "pgtide: error: unknown command \"%s\"\n", cmd);
	fprintf(stderr, "HINT: run \"pgtide --help\" for the commands\n");
	return CLI_EXIT_USAGE;
}
