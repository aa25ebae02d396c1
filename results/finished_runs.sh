# Sourced by results/*/run_sweeps.sh: keep a sweep's finished runs in the repository so that it
# spans sessions and fresh clones. A run folder <root>/<arm>/<run>/ with a done.json is copied to
# <kept>/<arm>/<run>/ (config.json, done.json, metrics.csv; no checkpoint: too large to commit),
# and copied back before the sweep starts, which then skips it as finished.
#
#   source results/finished_runs.sh
#   restore_finished runs/controls results/controls/finished
#   trap 'save_finished runs/controls results/controls/finished' EXIT

restore_finished() {    # restore_finished ROOT KEPT: each kept run not finished under ROOT
    local root="$1" kept_root="$2" kept rel
    for kept in "$kept_root"/*/*/; do
        rel="${kept#"$kept_root"/}"
        if [[ ! -e "$root/$rel/done.json" ]]; then
            mkdir -p "$root/$rel"
            cp "$kept"config.json "$kept"done.json "$kept"metrics.csv "$root/$rel"
        fi
    done
}

save_finished() {       # save_finished ROOT KEPT: each finished run under ROOT into KEPT
    local root="$1" kept_root="$2" done run rel
    for done in "$root"/*/*/done.json; do
        run="$(dirname "$done")"
        rel="${run#"$root"/}"
        mkdir -p "$kept_root/$rel"
        cp "$run/config.json" "$run/done.json" "$run/metrics.csv" "$kept_root/$rel/"
    done
}
