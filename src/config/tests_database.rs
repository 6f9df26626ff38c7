//! The database gate: data check kinds (`command`, the default, and
//! `migrations`) and `backup` steps, which must come before every step that
//! changes the running version.

use super::tests_parse::{BASE, errors, expect, line_of};

/// `BASE` with a symlink release source instead of a version URL.
fn symlink_base() -> String {
    BASE.replace(
        "release = { kind = \"version_url\", url = \"http://127.0.0.1:8080/version\" }",
        "release = { kind = \"symlink\", path = \"/srv/app/current\" }",
    )
}

#[test]
fn a_data_check_without_kind_is_a_command_and_migrations_checks_are_valid() {
    let text = format!(
        "{}\n[[target.data_check]]\nname = \"old\"\nargv = [\"/bin/true\", \"{{{{version}}}}\"]\n\n[[target.data_check]]\nname = \"files\"\nkind = \"migrations\"\nmigrations_dir = \"db/migrations\"\n\n[[target.data_check]]\nname = \"listed\"\nkind = \"migrations\"\nlist_argv = [\"/bin/true\", \"{{{{version}}}}\"]\ntimeout = \"5s\"\n",
        symlink_base()
    );
    assert_eq!(errors(&text), Vec::new());
}

#[test]
fn each_data_check_kind_takes_its_own_keys() {
    let text = format!(
        "{BASE}\n[[target.data_check]]\nname = \"a\"\nargv = [\"/bin/true\"]\nlist_argv = [\"/bin/true\"]   # command\n\n[[target.data_check]]\nname = \"b\"\nkind = \"migrations\"   # needs a source\n\n[[target.data_check]]\nname = \"c\"\nkind = \"migrations\"\nargv = [\"/bin/true\"]   # not migrations\nmigrations_dir = \"../db\"   # no symlink\n\n[[target.data_check]]\nname = \"d\"\nkind = \"migrations\"\nlist_argv = [\"/bin/true\", \"{{{{when}}}}\"]\n"
    );
    let errs = errors(&text);
    let at = |k: usize, key: &str| format!("target[0].data_check[{k}].{key}");
    let is = |needle: &str| line_of(&text, needle);
    expect(
        &errs,
        &at(0, "list_argv"),
        is("# command"),
        "`list_argv` is not used by data check kind `command`",
    );
    expect(
        &errs,
        &at(1, "kind"),
        is("# needs a source"),
        "needs `migrations_dir` or `list_argv`",
    );
    expect(
        &errs,
        &at(2, "argv"),
        is("# not migrations"),
        "`argv` is not used by data check kind `migrations`",
    );
    expect(
        &errs,
        &at(2, "migrations_dir"),
        is("# no symlink"),
        "only a `symlink` release source has",
    );
    expect(
        &errs,
        &at(2, "migrations_dir"),
        is("# no symlink"),
        "no `..`",
    );
    expect(
        &errs,
        &at(3, "list_argv[1]"),
        is("{{when}}"),
        "unknown template variable `{{when}}`",
    );
    assert_eq!(errs.len(), 6, "{errs:#?}");
}

#[test]
fn a_backup_must_come_before_every_step_that_changes_the_version() {
    let step = |phase: &str, kind: &str, rest: &str| {
        format!("\n[[target.step]]\nphase = \"{phase}\"\nkind = \"{kind}\"\n{rest}\n")
    };
    let backup = step(
        "database",
        "backup",
        "name = \"dump\"\nargv = [\"/bin/true\", \"/backups/{{timestamp}}-{{version}}-{{previous_version}}.sql\"]",
    );
    let good = format!(
        "{}{backup}{}",
        symlink_base(),
        step("rollback", "symlink_switch", "")
    );
    assert_eq!(errors(&good), Vec::new());

    let text = format!(
        "{}{}{}{}{}",
        symlink_base(),
        step("rollback\"   # switch, \"", "symlink_switch", ""),
        step(
            "traffic\"   # restart, \"",
            "systemd_restart",
            "unit = \"app\""
        ),
        step("traffic", "command", "argv = [\"/bin/true\"]"),
        backup.replace("\"database\"", "\"verify\""),
    );
    let errs = errors(&text);
    for (k, needle) in [(0, "# switch"), (1, "# restart")] {
        expect(
            &errs,
            &format!("target[0].step[{k}].phase"),
            line_of(&text, needle),
            "runs before the backup step `dump` (target[0].step[3])",
        );
    }
    assert_eq!(
        errs.len(),
        2,
        "a command step is not known to change the version: {errs:#?}"
    );
}

#[test]
fn a_failed_backup_always_aborts_so_continue_is_refused() {
    let text = format!(
        "{}\n[[target.step]]\nphase = \"database\"\nkind = \"backup\"\nargv = [\"/bin/true\"]\non_failure = \"continue\"\n",
        symlink_base()
    );
    expect(
        &errors(&text),
        "target[0].step[0].on_failure",
        line_of(&text, "on_failure"),
        "a failed backup always aborts the pipeline",
    );
}
