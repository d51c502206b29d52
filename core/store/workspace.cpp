#include "store/workspace.h"

#include <chrono>
#include <thread>

#include <sqlite3.h>

#include <filesystem>
#include <functional>

#include "util/error.h"

namespace lincat {

namespace {

// A prepared statement with bound parameters; throws with the database path on any error.
class Stmt {
  public:
    Stmt(sqlite3* db, const std::string& sql, const std::string& label) : db_(db), label_(label) {
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK)
            fail(label_, ": SQL error: ", sqlite3_errmsg(db), " in: ", sql);
    }
    ~Stmt() { sqlite3_finalize(s_); }
    Stmt& reset() {  // ready to bind and step again
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
        return *this;
    }
    Stmt& bind(int i, int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
    Stmt& bind(int i, double v) { return check(sqlite3_bind_double(s_, i, v)); }
    Stmt& bind(int i, const std::string& v) {
        return check(sqlite3_bind_text(s_, i, v.c_str(), int(v.size()), SQLITE_TRANSIENT));
    }
    bool step() {  // true while rows come
        int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        fail(label_, ": database error: ", sqlite3_errmsg(db_));
    }
    int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
    double f64(int c) const { return sqlite3_column_double(s_, c); }
    std::string text(int c) const {
        auto* p = sqlite3_column_text(s_, c);
        return p ? reinterpret_cast<const char*>(p) : "";
    }

  private:
    Stmt& check(int rc) {
        if (rc != SQLITE_OK) fail(label_, ": cannot bind a parameter: ", sqlite3_errmsg(db_));
        return *this;
    }
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
    std::string label_;
};

const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS sessions (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY, session TEXT NOT NULL REFERENCES sessions(name), kind TEXT NOT NULL, config TEXT NOT NULL,
  status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL DEFAULT 0,
  base_model_hash TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id), split TEXT NOT NULL, step INTEGER NOT NULL,
  tokens INTEGER NOT NULL, loss REAL NOT NULL, lr REAL NOT NULL, PRIMARY KEY (run_id, split, step));
CREATE TABLE IF NOT EXISTS layer_metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id), split TEXT NOT NULL, step INTEGER NOT NULL,
  layer INTEGER NOT NULL, mse REAL NOT NULL, PRIMARY KEY (run_id, split, step, layer));
CREATE TABLE IF NOT EXISTS checkpoints (
  id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id), step INTEGER NOT NULL,
  path TEXT NOT NULL, sha256 TEXT NOT NULL, is_best INTEGER NOT NULL, created_at TEXT NOT NULL);
)sql";

}  // namespace

Workspace::Workspace(Workspace&& o) noexcept : dir_(std::move(o.dir_)), db_(o.db_) {
    o.db_ = nullptr;
}
Workspace& Workspace::operator=(Workspace&& o) noexcept {
    std::swap(dir_, o.dir_);
    std::swap(db_, o.db_);
    return *this;
}
Workspace::~Workspace() {
    if (db_) sqlite3_close(db_);
}

void Workspace::exec(const std::string& sql) const {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        fail(db_path(), ": ", msg);
    }
}

Workspace Workspace::open(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) fail(dir, ": cannot create the workspace folder: ", ec.message());
    Workspace w;
    w.dir_ = dir;
    if (sqlite3_open_v2(w.db_path().c_str(), &w.db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK)
        fail(w.db_path(), ": cannot open the database: ", w.db_ ? sqlite3_errmsg(w.db_) : "out of memory");
    sqlite3_busy_timeout(w.db_, 10000);
    // A corrupt or foreign file is reported here, never silently used.
    {
        Stmt check(w.db_, "PRAGMA quick_check", w.db_path());
        std::string verdict;
        try {
            if (check.step()) verdict = check.text(0);
        } catch (const std::exception& e) {
            fail(w.db_path(), ": not a readable Lincat database (", e.what(), ")");
        }
        if (verdict != "ok") fail(w.db_path(), ": database is corrupt: ", verdict);
    }
    // Switching to WAL takes an exclusive lock that SQLite does not wait for (the busy handler
    // is skipped there): retry while another process is creating the same database.
    for (int attempt = 0;; ++attempt) {
        try {
            w.exec("PRAGMA journal_mode=WAL;");
            break;
        } catch (const std::exception&) {
            if (attempt >= 200) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    w.exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
    w.migrate();
    return w;
}

void Workspace::transaction(const std::function<void()>& body) {
    exec("BEGIN IMMEDIATE;");
    try {
        body();
        exec("COMMIT;");
    } catch (...) {
        exec("ROLLBACK;");
        throw;
    }
}

void Workspace::migrate() {
    // Each read finishes its statement: a read transaction left open could not take the write
    // lock below (SQLite answers "database is locked" at once, without waiting).
    auto read_version = [&] {
        Stmt v(db_, "PRAGMA user_version", db_path());
        return v.step() ? v.i64(0) : int64_t(0);
    };
    const int64_t version = read_version();
    if (version > kWorkspaceSchemaVersion)
        fail(db_path(), ": schema version ", version, " is newer than this lincat understands (",
             kWorkspaceSchemaVersion, "); upgrade lincat");
    if (version == kWorkspaceSchemaVersion) return;
    transaction([&] {
        // Again under the write lock: another process may have migrated since the first read.
        const int64_t now = read_version();
        if (now < 1) {
            exec(kSchemaV1);
            exec("PRAGMA user_version = 1;");
        }
        if (now < 2) {  // v2: results of evaluation runs (one JSON document per run)
            exec(
                "CREATE TABLE IF NOT EXISTS results (run_id INTEGER PRIMARY KEY REFERENCES runs(id), "
                "json TEXT NOT NULL);");
            exec("PRAGMA user_version = 2;");
        }
    });
}

void Workspace::set_run_results(int64_t run, const std::string& json) {
    Stmt s(db_, "INSERT OR REPLACE INTO results (run_id, json) VALUES (?, ?)", db_path());
    s.bind(1, run).bind(2, json).step();
}

std::optional<std::string> Workspace::run_results(int64_t run) const {
    Stmt s(db_, "SELECT json FROM results WHERE run_id = ?", db_path());
    s.bind(1, run);
    if (!s.step()) return std::nullopt;
    return s.text(0);
}

int64_t Workspace::create_run(const std::string& session, RunKind kind, const std::string& config_json,
                              const std::string& base_model_hash) {
    Stmt ses(db_, "INSERT OR IGNORE INTO sessions (name, created_at) VALUES (?, datetime('now'))", db_path());
    ses.bind(1, session).step();
    Stmt s(db_,
           "INSERT INTO runs (session, kind, config, status, base_model_hash, created_at, updated_at) "
           "VALUES (?, ?, ?, ?, ?, datetime('now'), datetime('now'))",
           db_path());
    s.bind(1, session)
        .bind(2, std::string(run_kind_name(kind)))
        .bind(3, config_json)
        .bind(4, std::string(run_status_name(RunStatus::Created)))
        .bind(5, base_model_hash)
        .step();
    return sqlite3_last_insert_rowid(db_);
}

// A text value the mapping does not know is an error naming the run and the column: never a
// silent default (a newer lincat's kind, or a hand-edited database).
static RunRecord read_run(const Stmt& s, const std::string& db) {
    RunRecord r;
    r.id = s.i64(0), r.session = s.text(1), r.config_json = s.text(3);
    auto kind = parse_run_kind(s.text(2));
    auto status = parse_run_status(s.text(4));
    if (!kind) fail(db, ": run ", r.id, ": column 'kind' holds '", s.text(2), "', not a run kind this lincat knows");
    if (!status) fail(db, ": run ", r.id, ": column 'status' holds '", s.text(4), "', not a run status");
    r.kind = *kind, r.status = *status;
    r.message = s.text(5), r.pid = s.i64(6), r.base_model_hash = s.text(7), r.created_at = s.text(8);
    r.updated_at = s.text(9);
    return r;
}

static const char* kRunColumns =
    "SELECT id, session, kind, config, status, message, pid, base_model_hash, created_at, updated_at FROM runs";

RunRecord Workspace::run(int64_t id) const {
    Stmt s(db_, std::string(kRunColumns) + " WHERE id = ?", db_path());
    s.bind(1, id);
    if (!s.step()) fail(db_path(), ": no run ", id);
    return read_run(s, db_path());
}

std::vector<RunRecord> Workspace::runs() const {
    Stmt s(db_, std::string(kRunColumns) + " ORDER BY id", db_path());
    std::vector<RunRecord> out;
    while (s.step()) out.push_back(read_run(s, db_path()));
    return out;
}

void Workspace::set_run_status(int64_t run, RunStatus status, const std::string& message) {
    Stmt s(db_, "UPDATE runs SET status = ?, message = ?, updated_at = datetime('now') WHERE id = ?", db_path());
    s.bind(1, std::string(run_status_name(status))).bind(2, message).bind(3, run).step();
}

int64_t Workspace::data_version() const {
    Stmt s(db_, "PRAGMA data_version", db_path());
    return s.step() ? s.i64(0) : 0;
}

void Workspace::set_run_pid(int64_t run, int64_t pid) {
    Stmt s(db_, "UPDATE runs SET pid = ?, updated_at = datetime('now') WHERE id = ?", db_path());
    s.bind(1, pid).bind(2, run).step();
}

void Workspace::record_step(int64_t run, const std::string& split, const StepRecord& r) {
    transaction([&] {
        Stmt m(db_, "INSERT OR REPLACE INTO metrics (run_id, split, step, tokens, loss, lr) VALUES (?, ?, ?, ?, ?, ?)",
               db_path());
        m.bind(1, run).bind(2, split).bind(3, r.step).bind(4, r.tokens).bind(5, r.loss).bind(6, r.lr).step();
        Stmt lm(db_, "INSERT OR REPLACE INTO layer_metrics (run_id, split, step, layer, mse) VALUES (?, ?, ?, ?, ?)",
                db_path());
        for (size_t l = 0; l < r.layer_mse.size(); ++l)
            lm.reset().bind(1, run).bind(2, split).bind(3, r.step).bind(4, int64_t(l)).bind(5, r.layer_mse[l]).step();
    });
}

std::vector<StepRecord> Workspace::steps(int64_t run, const std::string& split) const {
    std::vector<StepRecord> out;
    Stmt s(db_, "SELECT step, tokens, loss, lr FROM metrics WHERE run_id = ? AND split = ? ORDER BY step", db_path());
    s.bind(1, run).bind(2, split);
    while (s.step()) out.push_back({s.i64(0), s.i64(1), s.f64(2), s.f64(3), {}});
    Stmt l(db_, "SELECT step, layer, mse FROM layer_metrics WHERE run_id = ? AND split = ? ORDER BY step, layer",
           db_path());
    l.bind(1, run).bind(2, split);
    size_t i = 0;
    while (l.step()) {
        while (i < out.size() && out[i].step < l.i64(0)) ++i;
        if (i < out.size() && out[i].step == l.i64(0)) out[i].layer_mse.push_back(l.f64(2));
    }
    return out;
}

void Workspace::forget_after_checkpoint(int64_t run, int64_t step) {
    transaction([&] {
        const char* where =
            " WHERE run_id = ? AND ((split = 'train' AND step >= ?) OR (split <> 'train' AND step > ?))";
        Stmt a(db_, std::string("DELETE FROM metrics") + where, db_path());
        a.bind(1, run).bind(2, step).bind(3, step).step();
        Stmt b(db_, std::string("DELETE FROM layer_metrics") + where, db_path());
        b.bind(1, run).bind(2, step).bind(3, step).step();
        Stmt c(db_, "DELETE FROM checkpoints WHERE run_id = ? AND step > ?", db_path());
        c.bind(1, run).bind(2, step).step();
    });
}

int64_t Workspace::record_checkpoint(int64_t run, int64_t step, const std::string& path, const std::string& sha256,
                                     bool is_best) {
    Stmt s(db_,
           "INSERT INTO checkpoints (run_id, step, path, sha256, is_best, created_at) VALUES (?, ?, ?, ?, ?, "
           "datetime('now'))",
           db_path());
    s.bind(1, run).bind(2, step).bind(3, relative_path(path)).bind(4, sha256).bind(5, int64_t(is_best)).step();
    return sqlite3_last_insert_rowid(db_);
}

// Checkpoint paths are stored relative to the workspace (a moved workspace keeps working), and
// a path read back must stay inside it: a tampered database cannot point a run elsewhere.
std::string Workspace::relative_path(const std::string& path) const {
    namespace fs = std::filesystem;
    fs::path rel = fs::absolute(path).lexically_normal().lexically_relative(fs::absolute(dir_).lexically_normal());
    if (rel.empty() || *rel.begin() == "..") fail(db_path(), ": checkpoint ", path, " is outside the workspace");
    return rel.string();
}

std::string Workspace::inside_path(const std::string& stored) const {
    namespace fs = std::filesystem;
    fs::path p(stored);
    if (p.is_absolute()) return (fs::absolute(dir_) / relative_path(stored)).string();  // older rows
    for (auto& part : p)
        if (part == "..") fail(db_path(), ": checkpoint path '", stored, "' leaves the workspace");
    return (fs::absolute(dir_) / p).lexically_normal().string();
}

std::optional<CheckpointRecord> Workspace::read_checkpoint(const std::string& sql, int64_t run) const {
    Stmt s(db_, sql, db_path());
    s.bind(1, run);
    if (!s.step()) return std::nullopt;
    return CheckpointRecord{s.i64(0), s.i64(1), s.i64(2), inside_path(s.text(3)), s.text(4), s.i64(5) != 0};
}

std::optional<CheckpointRecord> Workspace::last_checkpoint(int64_t run) const {
    return read_checkpoint(
        "SELECT id, run_id, step, path, sha256, is_best FROM checkpoints WHERE run_id = ? AND is_best = 0 "
        "ORDER BY step DESC, id DESC LIMIT 1",
        run);
}

std::optional<CheckpointRecord> Workspace::best_checkpoint(int64_t run) const {
    return read_checkpoint(
        "SELECT id, run_id, step, path, sha256, is_best FROM checkpoints WHERE run_id = ? AND is_best = 1 "
        "ORDER BY id DESC LIMIT 1",
        run);
}

std::vector<CheckpointRecord> Workspace::checkpoints(int64_t run) const {
    Stmt s(db_, "SELECT id, run_id, step, path, sha256, is_best FROM checkpoints WHERE run_id = ? ORDER BY step, id",
           db_path());
    s.bind(1, run);
    std::vector<CheckpointRecord> out;
    while (s.step()) out.push_back({s.i64(0), s.i64(1), s.i64(2), inside_path(s.text(3)), s.text(4), s.i64(5) != 0});
    return out;
}

}  // namespace lincat
