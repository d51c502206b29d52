#include "store/workspace.h"

#include <sqlite3.h>

#include <fstream>

#include "test_util.h"

using namespace lincat;
using lincat::test::expect_error;
using lincat::test::TempDir;

TEST(Workspace, RunsStepsCheckpoints) {
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    int64_t run = ws.create_run("s", RunKind::Distill, R"({"steps": 3})", "abc");
    EXPECT_EQ(ws.run(run).status, RunStatus::Created);
    ws.set_run_status(run, RunStatus::Running);
    for (int64_t s = 0; s < 3; ++s)
        ws.record_step(run, "train", {s, (s + 1) * 100, 1.0 / double(s + 1), 0.01, {0.1, 0.2}});
    ws.record_step(run, "train", {1, 200, 0.7, 0.01, {0.3, 0.4}});  // recorded again: replaces
    auto rows = ws.steps(run, "train");
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_DOUBLE_EQ(rows[1].loss, 0.7);
    EXPECT_EQ(rows[1].layer_mse, (std::vector<double>{0.3, 0.4}));
    ws.record_checkpoint(run, 2, d.file("ws/checkpoints/run-1/step-2"), "ff", false);
    ws.record_checkpoint(run, 2, d.file("ws/checkpoints/run-1/best"), "ee", true);
    EXPECT_EQ(ws.last_checkpoint(run)->path, d.file("ws/checkpoints/run-1/step-2"));
    EXPECT_EQ(ws.best_checkpoint(run)->path, d.file("ws/checkpoints/run-1/best"));
    EXPECT_EQ(ws.run(run).status, RunStatus::Running);
}

TEST(Workspace, ForgetAfterCheckpointKeepsWhatTheCheckpointHolds) {
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    int64_t run = ws.create_run("s", RunKind::Distill, "{}", "h");
    for (int64_t s = 0; s < 6; ++s) ws.record_step(run, "train", {s, 0, 1, 1, {1}});
    ws.record_step(run, "eval", {0, 0, 1, 1, {1}});
    ws.record_step(run, "eval", {4, 0, 1, 1, {1}});
    ws.record_step(run, "eval", {6, 0, 1, 1, {1}});
    ws.record_checkpoint(run, 4, ws.dir() + "/c4", "a", false);
    ws.record_checkpoint(run, 6, ws.dir() + "/c6", "b", false);
    ws.forget_after_checkpoint(run, 4);  // state after 4 updates: train rows 0..3, eval rows 0 and 4
    EXPECT_EQ(ws.steps(run, "train").size(), 4u);
    EXPECT_EQ(ws.steps(run, "eval").size(), 2u);
    EXPECT_EQ(ws.last_checkpoint(run)->step, 4);
}

TEST(Workspace, ReadableByASecondConnectionWhileAWriterHoldsATransaction) {
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    int64_t run = ws.create_run("s", RunKind::Distill, "{}", "h");
    ws.record_step(run, "train", {0, 0, 1, 1, {1}});
    sqlite3* writer = nullptr;
    ASSERT_EQ(sqlite3_open(ws.db_path().c_str(), &writer), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(writer, "BEGIN IMMEDIATE; INSERT INTO metrics VALUES (1, 'train', 1, 0, 1, 1);", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    Workspace reader = Workspace::open(d.file("ws"));  // WAL: readers are not blocked
    EXPECT_EQ(reader.steps(run, "train").size(), 1u);  // sees committed rows only
    sqlite3_exec(writer, "COMMIT;", nullptr, nullptr, nullptr);
    sqlite3_close(writer);
    EXPECT_EQ(reader.steps(run, "train").size(), 2u);
}

TEST(Workspace, CorruptOrNewerDatabaseIsRefused) {
    TempDir d;
    std::filesystem::create_directories(d.file("bad"));
    std::ofstream(d.file("bad/lincat.db")) << std::string(4096, 'x');
    expect_error([&] { Workspace::open(d.file("bad")); }, {"lincat.db"});
    { Workspace ws = Workspace::open(d.file("new")); }
    sqlite3* db = nullptr;
    sqlite3_open(d.file("new/lincat.db").c_str(), &db);
    sqlite3_exec(db, "PRAGMA user_version = 99;", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    expect_error([&] { Workspace::open(d.file("new")); }, {"schema version 99", "newer"});
}

TEST(Workspace, UnknownRunIsAnError) {
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    expect_error([&] { ws.run(42); }, {"no run 42"});
}

TEST(Workspace, VersionOneDatabaseMigratesAndKeepsItsRuns) {
    TempDir d;
    int64_t run;
    {
        Workspace ws = Workspace::open(d.file("ws"));
        run = ws.create_run("s", RunKind::Distill, "{}", "h");
        ws.record_step(run, "train", {0, 64, 1.5, 0.01, {0.1, 0.2}});
    }
    // Make it a version-1 database again: no results table.
    sqlite3* db = nullptr;
    sqlite3_open(d.file("ws/lincat.db").c_str(), &db);
    sqlite3_exec(db, "DROP TABLE results; PRAGMA user_version = 1;", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    Workspace ws = Workspace::open(d.file("ws"));
    EXPECT_EQ(ws.steps(run, "train").size(), 1u);
    EXPECT_FALSE(ws.run_results(run).has_value());
    ws.set_run_results(run, R"({"acc": 0.5})");
    ws.set_run_results(run, R"({"acc": 0.75})");  // replaced, not duplicated
    EXPECT_EQ(*ws.run_results(run), R"({"acc": 0.75})");
    // The text values of the older database read as the typed kind and status.
    EXPECT_EQ(ws.run(run).kind, RunKind::Distill);
    EXPECT_EQ(ws.run(run).status, RunStatus::Created);
}

// The database keeps the text values; typed reads refuse ones no lincat wrote, naming the column.
TEST(Workspace, StoresTextValuesAndRefusesUnknownOnes) {
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    int64_t block = ws.create_run("s", RunKind::DistillBlock, "{}", "h");
    ws.set_run_status(block, RunStatus::Cancelled);
    auto column = [&](const char* sql) {
        sqlite3* db = nullptr;
        sqlite3_open(d.file("ws/lincat.db").c_str(), &db);
        sqlite3_stmt* s = nullptr;
        sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
        std::string out = sqlite3_step(s) == SQLITE_ROW ? reinterpret_cast<const char*>(sqlite3_column_text(s, 0)) : "";
        sqlite3_finalize(s);
        sqlite3_close(db);
        return out;
    };
    EXPECT_EQ(column("SELECT kind || ' ' || status FROM runs"), "distill-block cancelled");
    column("UPDATE runs SET kind = 'distill-moe'");
    expect_error([&] { ws.run(block); }, {"lincat.db", "run 1", "'kind'", "distill-moe"});
    column("UPDATE runs SET kind = 'eval', status = 'paused'");
    expect_error([&] { ws.runs(); }, {"'status'", "paused"});
}

// PRAGMA data_version moves when another connection commits, not for this one's own writes.
TEST(Workspace, DataVersionSeesOtherWriters) {
    TempDir d;
    Workspace reader = Workspace::open(d.file("ws"));
    Workspace writer = Workspace::open(d.file("ws"));
    const int64_t v0 = reader.data_version();
    EXPECT_EQ(reader.data_version(), v0);  // nothing changed
    int64_t run = writer.create_run("s", RunKind::Eval, "{}", "h");
    const int64_t v1 = reader.data_version();
    EXPECT_NE(v1, v0);
    reader.set_run_status(run, RunStatus::Completed);  // its own write
    EXPECT_EQ(reader.data_version(), v1);
    writer.record_step(run, "eval", {0, 1, 1.0, 0, {}});
    EXPECT_NE(reader.data_version(), v1);
}

TEST(Workspace, CheckpointPathsStayInsideTheWorkspace) {
    TempDir d;
    int64_t run;
    {
        Workspace ws = Workspace::open(d.file("ws"));
        run = ws.create_run("s", RunKind::Distill, "{}", "h");
        ws.record_checkpoint(run, 2, d.file("ws/checkpoints/run-1/step-2"), "a", false);
        expect_error([&] { ws.record_checkpoint(run, 3, d.file("elsewhere/step-3"), "b", false); },
                     {"outside the workspace"});
    }
    // A moved workspace keeps working: paths are stored relative to it.
    std::filesystem::rename(d.file("ws"), d.file("moved"));
    {
        Workspace ws = Workspace::open(d.file("moved"));
        EXPECT_EQ(ws.last_checkpoint(run)->path, d.file("moved/checkpoints/run-1/step-2"));
    }
    // A tampered database cannot point a run outside the workspace.
    for (const char* evil : {"../../etc", "/etc/passwd"}) {
        sqlite3* db = nullptr;
        sqlite3_open(d.file("moved/lincat.db").c_str(), &db);
        sqlite3_stmt* s = nullptr;
        sqlite3_prepare_v2(db, "UPDATE checkpoints SET path = ?", -1, &s, nullptr);
        sqlite3_bind_text(s, 1, evil, -1, SQLITE_TRANSIENT);
        sqlite3_step(s);
        sqlite3_finalize(s);
        sqlite3_close(db);
        Workspace ws = Workspace::open(d.file("moved"));
        expect_error([&] { ws.last_checkpoint(run); }, {"lincat.db", "workspace"});
    }
}
