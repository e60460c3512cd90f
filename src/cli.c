/*
 * cli: argv -> TaskConfig -> task, and Error -> message + exit code.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "task.h"

static void
usage_main(FILE *out)
{
	fprintf(
	    out,
	    "pgtide migrates a live PostgreSQL database to another server.\n"
	    "\n"
	    "Usage:\n"
	    "  pgtide COMMAND [OPTIONS]\n"
	    "\n"
	    "Commands:\n"
	    "  copy      full load: schema, consistent parallel copy, indexes,\n"
	    "            sequences; resumable\n"
	    "\n"
	    "Options:\n"
	    "  -V, --version  print the version and exit\n"
	    "  -h, --help     show this help and exit\n"
	    "\n"
	    "Run \"pgtide COMMAND --help\" for a command's options.\n");
}

static void
usage_copy(FILE *out)
{
	fprintf(out,
	        "pgtide copy loads the schema and every row of the source database "
	        "into the\n"
	        "target, consistent as of one instant, then builds indexes and "
	        "constraints.\n"
	        "Run it again with the same task name to resume.\n"
	        "\n"
	        "Usage:\n"
	        "  pgtide copy --source URI --target URI [OPTIONS]\n"
	        "\n"
	        "Connections and task:\n"
	        "  -s, --source=URI          source database (libpq URI or "
	        "conninfo)\n"
	        "  -d, --target=URI          target database\n"
	        "  -n, --task=NAME           task name, [a-z0-9_] (default: "
	        "default)\n"
	        "  -c, --config=FILE         task file (YAML or JSON); options "
	        "override it\n"
	        "\n"
	        "What moves:\n"
	        "  -t, --table=PATTERN       include tables matching schema.table "
	        "(* and ?);\n"
	        "                            repeatable (default: every table)\n"
	        "  -T, --exclude-table=PATTERN  exclude matching tables; "
	        "repeatable\n"
	        "      --schema=MODE         create (from pg_dump, default) or "
	        "existing\n"
	        "      --on-existing=WHAT    refuse (default), truncate (existing "
	        "mode),\n"
	        "                            or drop (create mode)\n"
	        "\n"
	        "How fast:\n"
	        "  -j, --jobs=N              parallel copy workers (default: 4)\n"
	        "  -J, --index-jobs=N        parallel index builders (default: 2)\n"
	        "      --split-tables-larger-than=SIZE  cut larger tables into "
	        "chunks\n"
	        "                            (default: auto, a fair share; 0 never splits)\n"
	        "      --format=FORMAT       auto (default), text or binary\n"
	        "\n"
	        "Other:\n"
	        "      --pg-dump=PATH        pg_dump to use (default: newest "
	        "installed)\n"
	        "      --state-schema=NAME   state schema on the target (default: "
	        "pgtide)\n"
	        "      --progress-interval=SECONDS  progress log period off a "
	        "terminal\n"
	        "                            (default: 10)\n"
	        "      --log-format=FORMAT   text (default) or json\n"
	        "  -v, --verbose             more log lines\n"
	        "  -q, --quiet               warnings and errors only\n"
	        "  -h, --help                show this help and exit\n"
	        "\n"
	        "Exit codes: 0 done, 1 internal error, 2 usage or task file, 3 "
	        "source,\n"
	        "4 target, 5 interrupted (run again to resume).\n");
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
	}
	return CLI_EXIT_INTERNAL;
}

static int
report(const Error *err)
{
	if (err->kind == ERR_INTERRUPTED)
		fprintf(stderr,
		        "pgtide: interrupted; progress is saved, run the same command "
		        "again to resume\n");
	else
	{
		fprintf(stderr, "pgtide: error: %s\n", err->message);
		if (err->detail[0])
			fprintf(stderr, "DETAIL: %s\n", err->detail);
		if (err->hint[0])
			fprintf(stderr, "HINT: %s\n", err->hint);
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
};

static const struct option copy_options[] = {
    {"source", required_argument, NULL, 's'},
    {"target", required_argument, NULL, 'd'},
    {"task", required_argument, NULL, 'n'},
    {"config", required_argument, NULL, 'c'},
    {"table", required_argument, NULL, 't'},
    {"exclude-table", required_argument, NULL, 'T'},
    {"jobs", required_argument, NULL, 'j'},
    {"index-jobs", required_argument, NULL, 'J'},
    {"schema", required_argument, NULL, OPT_SCHEMA},
    {"on-existing", required_argument, NULL, OPT_ON_EXISTING},
    {"split-tables-larger-than", required_argument, NULL, OPT_SPLIT},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"pg-dump", required_argument, NULL, OPT_PG_DUMP},
    {"state-schema", required_argument, NULL, OPT_STATE_SCHEMA},
    {"progress-interval", required_argument, NULL, OPT_PROGRESS},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char copy_short[] = "s:d:n:c:t:T:j:J:vqh";

/* The task-file key an option sets, or NULL for options that set none. */
static const char *
option_key(int opt)
{
	switch (opt)
	{
		case 's':
			return "source";
		case 'd':
			return "target";
		case 'n':
			return "task";
		case 't':
			return "tables.include";
		case 'T':
			return "tables.exclude";
		case 'j':
			return "copy.jobs";
		case 'J':
			return "copy.index_jobs";
		case OPT_SCHEMA:
			return "schema.mode";
		case OPT_ON_EXISTING:
			return "schema.on_existing";
		case OPT_SPLIT:
			return "copy.split_tables_larger_than";
		case OPT_FORMAT:
			return "copy.format";
		case OPT_PG_DUMP:
			return "schema.pg_dump";
		case OPT_STATE_SCHEMA:
			return "state.schema";
		case OPT_PROGRESS:
			return "progress.interval";
		default:
			return NULL;
	}
}

static const char *
option_name(int opt)
{
	for (const struct option *o = copy_options; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

/*
 * Reads the copy command's options into cfg: the task file first, wherever
 * --config appears, then every other option over it, in order.
 */
static bool
parse_copy(int argc, char **argv, TaskConfig *cfg, bool *help, Error *err)
{
	const char *config_path = NULL;
	LogLevel level = LOG_LEVEL_INFO;
	bool json = false;
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, copy_short, copy_options, NULL)) !=
	       -1)
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
			return err_hint(err, "run \"pgtide copy --help\" for the options");
		}
	}
	if (*help)
		return true;
	if (optind < argc)
	{
		err_set(err, ERR_USAGE, "unexpected argument \"%s\"", argv[optind]);
		return err_hint(err, "run \"pgtide copy --help\" for the options");
	}
	if (config_path != NULL && !config_load_file(cfg, config_path, err))
		return false;
	optind = 1;
	while ((opt = getopt_long(argc, argv, copy_short, copy_options, NULL)) !=
	       -1)
	{
		const char *key = option_key(opt);
		char origin[64];

		if (key != NULL)
		{
			snprintf(origin, sizeof(origin), "option --%s", option_name(opt));
			if (!config_set(cfg, key, optarg, origin, err))
				return false;
		}
		else if (opt == 'v')
			level = LOG_LEVEL_DEBUG;
		else if (opt == 'q')
			level = LOG_LEVEL_WARN;
		else if (opt == OPT_LOG_FORMAT)
		{
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0)
			{
				err_set(err, ERR_USAGE,
				        "option --log-format: invalid value \"%s\"; valid "
				        "values are text, json",
				        optarg);
				return false;
			}
			json = strcmp(optarg, "json") == 0;
		}
	}
	log_configure(level, json);
	return config_validate(cfg, err);
}

static int
cmd_copy(int argc, char **argv, volatile sig_atomic_t *stop)
{
	TaskConfig cfg;
	Error err = ERR_INIT;
	bool help = false;
	int code;

	config_init(&cfg);
	if (!parse_copy(argc, argv, &cfg, &help, &err))
		code = report(&err);
	else if (help)
	{
		usage_copy(stdout);
		code = CLI_EXIT_OK;
	}
	else if (!task_copy(&cfg, stop, &err))
		code = report(&err);
	else
		code = CLI_EXIT_OK;
	config_free(&cfg);
	return code;
}

int
cli_main(int argc, char **argv, volatile sig_atomic_t *stop)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

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
	if (strcmp(cmd, "copy") == 0)
		return cmd_copy(argc - 1, argv + 1, stop);
	fprintf(stderr, "pgtide: error: unknown command \"%s\"\n", cmd);
	fprintf(stderr, "HINT: run \"pgtide --help\" for the commands\n");
	return CLI_EXIT_USAGE;
}
