/**
 * What the PostgreSQL gateway's classifier knows by name: functions and settings whose use
 * raises a statement's class, catalogs that show what policy would hide, object types that
 * are server administration. Names are PostgreSQL's as the parser gives them.
 */

// Function lists. Names match on their last component, case-insensitively, whatever the schema:
// dblink and adminpack install into any schema, and a same-named user function only makes us stricter.

/**
 * A call anywhere (WHERE, VALUES, a DEFAULT, a CTE, a view body) makes the text admin: these act on
 * the server, its files or other sessions, change the session's identity (`set_config('role', …)`),
 * or run SQL text the classifier never sees (`query_to_xml`, `ts_stat`, `dblink`; tablefunc's `crosstab` and
 * `connectby` and xml2's `xpath_table`, which build their query from strings, and are STABLE to the catalog),
 * or read or change a table's pages beneath its rows, masks and policy (pageinspect's `get_raw_page` and
 * `bt_page_items`, pg_surgery's `heap_force_kill`; pageinspect's `tuple_data_split` and `heap_page_item_attrs`
 * fetch any table's TOASTed value that a pointer in the bytes they are given names, and `brin_page_items` and
 * `gist_page_items` decode given bytes with a real index's column types; pg_walinspect's `pg_get_wal_block_info`
 * (PostgreSQL 16) returns the rows and page images the WAL holds, of every table), or show every setting's
 * value, `secretSettings` included (`pg_show_all_settings`, what pg_settings and `SHOW ALL` read).
 */
export const adminFunctions = new Set([
  'set_config', 'pg_terminate_backend', 'pg_cancel_backend', 'pg_signal_backend', 'pg_reload_conf',
  'pg_rotate_logfile', 'pg_rotate_logfile_old', 'pg_stat_file', 'pg_logdir_ls', 'lo_import', 'lo_export',
  'pg_promote', 'pg_switch_wal', 'pg_switch_xlog', 'pg_start_backup', 'pg_stop_backup',
  'pg_drop_replication_slot', 'pg_replication_slot_advance', 'pg_sync_replication_slots',
  'pg_log_backend_memory_contexts', 'pg_log_standby_snapshot', 'pg_import_system_collations',
  'pg_stat_statements_reset', 'pg_truncate_visibility_map', 'pg_nextoid', 'ts_stat', 'ts_rewrite',
  'pg_stat_get_activity', 'pg_stat_get_backend_activity', 'pg_stat_statements',
  'pg_show_all_file_settings', 'pg_show_all_settings', 'pg_hba_file_rules', 'pg_ident_file_mappings', 'connectby', 'xpath_table',
  'get_raw_page', 'tuple_data_split', 'heap_page_item_attrs', 'brin_page_items', 'gist_page_items', 'pg_get_wal_block_info'
])
export const adminFunctionPrefixes = [
  'dblink', 'pg_read_', 'pg_ls_', 'pg_file_', 'pg_stat_reset', 'pg_create_', 'pg_copy_', 'pg_logical_',
  'pg_replication_origin_', 'pg_wal_replay_', 'pg_backup_', 'pg_restore_', 'pg_clear_', 'pg_set_',
  'binary_upgrade_', 'query_to_xml', 'table_to_xml', 'cursor_to_xml', 'schema_to_xml', 'database_to_xml',
  'crosstab', 'bt_page_', 'heap_force_'
]
/**
 * pg_cron's functions (its schema is always `cron`) that store SQL text for a background worker
 * to run later as the job's owner, the target's role, in any database for `schedule_in_database`:
 * the classifier never sees that text. `unschedule` stops a job another agent or an administrator
 * scheduled. Unqualified names are left to the catalog: `schedule` is a common name.
 */
export const cronFunctions = new Set(['schedule', 'schedule_in_database', 'alter_job', 'unschedule'])

/**
 * A call makes the text at least write: these change data (sequences, large objects, index
 * pages, which PostgreSQL lets even a read-only transaction change), or take advisory locks or notify.
 */
export const writeFunctions = new Set([
  'nextval', 'setval', 'pg_notify', 'lo_create', 'lo_creat', 'lo_from_bytea', 'lo_put', 'lo_unlink',
  'lowrite', 'lo_truncate', 'lo_truncate64', 'lo_open',
  'brin_summarize_new_values', 'brin_summarize_range', 'brin_desummarize_range', 'gin_clean_pending_list'
])
export const writeFunctionPrefixes = ['pg_advisory_', 'pg_try_advisory_']

/** Whether a function, by its last name part in any case, is one only an admin may call. */
export function isAdminFunction (name: string): boolean {
  const lower = name.toLowerCase()
  return adminFunctions.has(lower) || adminFunctionPrefixes.some((p) => lower.startsWith(p))
}

/** Whether a function, by its last name part in any case, is known to write. */
export function isWriteFunction (name: string): boolean {
  const lower = name.toLowerCase()
  return writeFunctions.has(lower) || writeFunctionPrefixes.some((p) => lower.startsWith(p))
}

/**
 * Settings any SET/RESET of which is admin: they change who the session is, switch off triggers,
 * change how the server reads SQL text, so that it would no longer read it as this parser does
 * (with `standard_conforming_strings` off, `SELECT 'a\', '; DROP TABLE x; --'` runs the DROP), or,
 * given at startup by any role, keep the backend asleep in one of the server's connection slots
 * for up to 2147 s after the gateway gave its login up (`post_auth_delay`, a developer option).
 */
export const privilegedSettings = new Set(['role', 'session_authorization', 'session_replication_role',
  'standard_conforming_strings', 'backslash_quote', 'post_auth_delay'])
/**
 * Settings only a superuser may change (PostgreSQL refuses them to any other role, so they
 * matter where the target's role is one): logging and statistics that would hide an agent from
 * the server's log, libraries loaded from disk, damaged-page and checksum overrides, JIT
 * debugging and profiling data written to the server's disk for every query (given at startup),
 * and `event_triggers` (PostgreSQL 17), which switches off the event triggers that guard DDL.
 */
export const superuserSettings = new Set(['allow_in_place_tablespaces', 'allow_system_table_mods', 'backtrace_functions', 'commit_delay',
  'compute_query_id', 'deadlock_timeout', 'dynamic_library_path', 'ignore_checksum_failure', 'lc_messages', 'lo_compat_privileges',
  'max_stack_depth', 'session_preload_libraries', 'local_preload_libraries', 'temp_file_limit', 'update_process_title',
  'wal_compression', 'wal_consistency_checking', 'wal_init_zero', 'wal_recycle', 'zero_damaged_pages', 'ignore_system_indexes',
  'ignore_invalid_pages', 'jit_dump_bitcode', 'jit_debugging_support', 'jit_profiling_support', 'event_triggers'])
export const superuserSettingPrefixes = ['log_', 'track_', 'debug_', 'trace_']
/** Client encodings in which the text means what it means in UTF-8 to the parser; others may hide a quote in a multibyte character. */
export const safeEncodings = new Set(['utf8', 'utf-8', 'unicode'])
/** `SET TRANSACTION …` and `SET SESSION CHARACTERISTICS AS TRANSACTION …` (VAR_SET_MULTI forms). */
export const transactionSettings = new Set(['transaction', 'session characteristics', 'transaction snapshot'])
/**
 * Settings that make transactions read-only. A session whose token may not write is read-only
 * upstream, so that PostgreSQL itself refuses the writes no classifier sees (a function a
 * stable one calls, an operator's, a cast's, a view's): turning it off is a write.
 */
export const readOnlySettings = new Set(['default_transaction_read_only', 'transaction_read_only'])
export const readOnlyValues = new Set(['on', 'true', 'yes', '1'])
export const readTransactionKinds = new Set(['TRANS_STMT_BEGIN', 'TRANS_STMT_START', 'TRANS_STMT_COMMIT', 'TRANS_STMT_ROLLBACK',
  'TRANS_STMT_SAVEPOINT', 'TRANS_STMT_RELEASE', 'TRANS_STMT_ROLLBACK_TO'])
/**
 * Catalogs that show sampled column values (most common values, histogram bounds) of every
 * table: reading them would get round the policy's `tables` rules and its masks.
 */
export const statisticsRelations = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic', 'pg_statistic_ext_data'])
/**
 * Views that show other sessions' SQL text, literals included: every agent of a target logs in
 * upstream as the target's one role, which PostgreSQL lets see its own sessions' queries.
 */
export const activityRelations = new Set(['pg_stat_activity', 'pg_stat_statements'])
/**
 * Catalogs with password hashes (of roles, of foreign servers' users, a subscription's connection
 * string) or the server's configuration files. A user mapping's options (a foreign server's
 * password among them) show in information_schema's views of it too.
 */
export const credentialRelations = new Set(['pg_authid', 'pg_shadow', 'pg_user_mappings', 'pg_user_mapping', 'user_mapping_options', '_pg_user_mappings', 'pg_subscription'])
export const configRelations = new Set(['pg_hba_file_rules', 'pg_ident_file_mappings', 'pg_file_settings'])
/** Per-database and per-role settings, custom ones included (`ALTER DATABASE … SET app.jwt_secret = …`). */
export const roleSettingRelations = new Set(['pg_db_role_setting'])
/**
 * Views everyone may read whose columns show settings that may be secrets: each role's
 * settings, custom ones included (`ALTER ROLE authenticator SET pgrst.jwt_secret = …`), and
 * in pg_settings every setting's value, `secretSettings` among them (to a superuser role):
 * by view, the columns that show them, and all its columns (`r.f` naming another is
 * PostgreSQL's functional notation for `f(r)`, on the whole row: `r.row_to_json`).
 */
export const settingViews = new Map<string, { secret: string[], holds: string, columns: Set<string> }>([
  ['pg_roles', {
    secret: ['rolconfig'],
    holds: 'custom settings such as secrets',
    columns: new Set(['rolname', 'rolsuper', 'rolinherit', 'rolcreaterole', 'rolcreatedb', 'rolcanlogin', 'rolreplication',
      'rolconnlimit', 'rolpassword', 'rolvaliduntil', 'rolbypassrls', 'rolconfig', 'oid'])
  }],
  ['pg_user', {
    secret: ['useconfig'],
    holds: 'custom settings such as secrets',
    columns: new Set(['usename', 'usesysid', 'usecreatedb', 'usesuper', 'userepl', 'usebypassrls', 'passwd', 'valuntil', 'useconfig'])
  }],
  ['pg_settings', {
    secret: ['setting', 'reset_val', 'boot_val'],
    holds: "every setting's value, passwords and commands among them",
    columns: new Set(['name', 'setting', 'unit', 'category', 'short_desc', 'extra_desc', 'context', 'vartype', 'source', 'min_val',
      'max_val', 'enumvals', 'boot_val', 'reset_val', 'sourcefile', 'sourceline', 'pending_restart'])
  }]
])
/** The columns of `settingViews` that show settings' values. */
export const settingColumns = new Set([...settingViews.values()].flatMap((v) => v.secret))
/**
 * Settings whose value is a secret or a command the server runs (PostgreSQL 15's, which only
 * a superuser or pg_read_all_settings may read, and the target's role may be one): a
 * standby's connection string with its password, the shell commands that archive and restore
 * WAL (often with credentials of the storage they copy to), the command that prints the
 * server key's passphrase.
 */
export const secretSettings = new Set(['primary_conninfo', 'archive_command', 'restore_command', 'archive_cleanup_command',
  'recovery_end_command', 'ssl_passphrase_command'])
/** Object types whose CREATE/ALTER/DROP/RENAME is server administration rather than schema work. */
export const adminObjectTypes = new Set(['OBJECT_DATABASE', 'OBJECT_ROLE', 'OBJECT_TABLESPACE', 'OBJECT_EXTENSION',
  'OBJECT_LANGUAGE', 'OBJECT_EVENT_TRIGGER', 'OBJECT_FDW', 'OBJECT_FOREIGN_SERVER', 'OBJECT_USER_MAPPING',
  'OBJECT_PUBLICATION', 'OBJECT_PUBLICATION_NAMESPACE', 'OBJECT_PUBLICATION_REL', 'OBJECT_SUBSCRIPTION',
  'OBJECT_ACCESS_METHOD', 'OBJECT_TRANSFORM', 'OBJECT_CAST'])
/** Object types named by a bare name list (DROP, COMMENT) that are relations, and those that hang off one (last name is theirs). */
export const relationObjectTypes = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE', 'OBJECT_SEQUENCE'])
export const onRelationObjectTypes = new Set(['OBJECT_COLUMN', 'OBJECT_POLICY', 'OBJECT_RULE', 'OBJECT_TRIGGER', 'OBJECT_TABCONSTRAINT'])
