// Qt Test on the offscreen platform, driving the real widgets: the planner's 405B k = 9 disk
// figure, the layer-error views from recorded metrics, plot export, a real stage-1 job on
// stories15M started from the GUI (heat map fills, cancel, resume), a job killed with SIGKILL
// (GUI up, run failed, metrics readable), where a trained run loses (error by position beyond
// the window, heads, clicks that open attention maps), evaluation figures in the run tree and
// in comparisons, and a PNG of each main view for reviewers.
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QProcess>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTreeWidget>
#include <QtTest>
#include <qcustomplot.h>

#include "attention_view.h"
#include "compare_view.h"
#include "curve_plot.h"
#include "generate_view.h"
#include "heat_map_plot.h"
#include "job_runner.h"
#include "layer_bar_plot.h"
#include "layer_error_view.h"
#include "main_window.h"
#include "matrix_map_plot.h"
#include "model/model_dir.h"
#include "planner_view.h"
#include "position_error_plot.h"
#include "position_view.h"
#include "plot_export.h"
#include "session_view.h"
#include "store/workspace.h"
#include "util/json.h"

using namespace lincat;

class StudioTest : public QObject {
    Q_OBJECT
  private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);  // QSettings in a test location
        QCoreApplication::setOrganizationName("LincatTest");
        QVERIFY2(QFileInfo(studio::JobRunner::lincat_binary()).isExecutable(),
                 qPrintable("lincat binary not found: " + studio::JobRunner::lincat_binary()));
    }

    void plannerShowsThe405bDiskFigure() {
        widgets::PlannerView v;
        v.set_preset("llama-3.1-405b");
        v.set_tokens(50e6);
        QTableWidget* t = v.table();
        QCOMPARE(t->rowCount(), 126);
        // Row k = 9: 14 blocks and about 23 TB (DESIGN.md: "k = 9 (14 blocks) about 22 TB").
        QCOMPARE(t->item(8, 0)->text(), QString("9"));
        QCOMPARE(t->item(8, 1)->text(), QString("14"));
        QCOMPARE(t->item(8, 2)->text(), QString("22.9 TB"));
        QCOMPARE(t->item(0, 2)->text(), QString("206.4 TB"));  // k = 1
        QVERIFY(v.recommendation().contains("k = "));
        QVERIFY(v.disk_plot()->graphCount() == 2);  // the curve and the recommended point
        // A disk limit changes the pick and draws its line.
        QSignalSpy changed(&v, &widgets::PlannerView::plan_changed);
        v.findChild<QDoubleSpinBox*>("plannerDisk")->setValue(30);
        QCOMPARE(changed.count(), 1);
        QVERIFY(v.plan().recommended_k >= 7);  // 30 TB admits k >= 7 only
        QCOMPARE(v.disk_plot()->itemCount() >= 1, true);
        QTemporaryDir d;
        QVERIFY(v.export_plan(d.filePath("plan.json")));
        QFile f(d.filePath("plan.json"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        Plan back = plan_from_json(f.readAll().toStdString(), "plan.json");
        QCOMPARE(back.recommended_k, v.plan().recommended_k);
    }

    void layerErrorViewsShowRecordedMetrics() {
        QTemporaryDir d;
        Workspace ws = Workspace::open(d.filePath("ws").toStdString());
        int64_t run = ws.create_run("default", RunKind::Distill, R"({"layers": []})", std::string(64, 'a'));
        for (int64_t s = 0; s < 10; ++s)
            ws.record_step(run, "train",
                           {s, (s + 1) * 100, 1.0 / double(s + 1), 1e-2, {1e-3 / double(s + 1), 2e-3, 3e-2}});
        ws.record_step(run, "eval", {5, 600, 0.5, 1e-2, {1e-4, 2e-4, 3e-3}});
        ws.record_step(run, "eval", {10, 1100, 0.7, 1e-2, {2e-4, 3e-4, 4e-3}});
        studio::LayerErrorView v;
        v.resize(900, 700);
        v.set_workspace(&ws);
        v.show_run(run);
        QCOMPARE(v.heat_map()->columns(), 10);
        QCOMPARE(v.heat_map()->rows(), 3);
        QVERIFY(v.heat_map()->describe(1, 0).startsWith("layer 0, step 1: 0.001"));
        QVERIFY(v.heat_map()->describe(10, 2).contains("0.03"));
        QVERIFY(v.heat_map()->describe(10, 5).isEmpty());  // no layer 5
        QCOMPARE(v.bars()->series().size(), 2);            // latest and best
        QCOMPARE(v.bars()->series()[1][0], 1e-4);          // best = lowest held-out loss (step 5)
        QCOMPARE(v.curves()->curve_count(), 1);
        // Live: a new record shows on refresh.
        ws.record_step(run, "train", {10, 1200, 0.05, 1e-3, {1e-5, 1e-5, 1e-5}});
        v.refresh();
        QCOMPARE(v.heat_map()->columns(), 11);
    }

    // What block and dump jobs recorded in a workspace shows next to the predictions, and the
    // measured FLOP/s can replace the assumed throughput in the time columns.
    void plannerShowsMeasuredJobsAndCalibrates() {
        QTemporaryDir d;
        {
            Workspace ws = Workspace::open(d.filePath("ws").toStdString());
            const std::string shape = plan_shape_key(plan_preset("stories15m"));
            int64_t run = ws.create_run("default", RunKind::DistillBlock, "{}", std::string(64, 'a'));
            ws.set_run_results(
                run,
                json({{"measured",
                       {{"k", 2}, {"peak_rss_bytes", 123'000'000}, {"model_shape", shape}, {"achieved_flops", 2e9}}}})
                    .dump());
            int64_t dump = ws.create_run("default", RunKind::DumpStates, "{}", std::string(64, 'a'));
            ws.set_run_results(
                dump,
                json({{"k", 2},
                      {"jobs", {{{"peak_rss_bytes", 45'000'000}, {"model_shape", shape}, {"achieved_flops", 3e9}}}}})
                    .dump());
        }
        widgets::PlannerView v;
        v.set_preset("stories15m");
        v.set_workspace(d.filePath("ws"));
        QTableWidget* t = v.table();
        QCOMPARE(t->item(1, 0)->text(), QString("2"));
        QCOMPARE(t->item(1, 4)->text(), QString("123.0 MB"));  // block job, k = 2
        QCOMPARE(t->item(1, 6)->text(), QString("45.0 MB"));   // dump job, k = 2
        QCOMPARE(t->item(0, 4)->text(), QString("-"));         // nothing measured at k = 1
        QCOMPARE(v.measurements().jobs.size(), size_t(2));
        auto* calibrate = v.findChild<QCheckBox*>("plannerCalibrate");
        QVERIFY(calibrate->isEnabled());
        const double assumed = v.plan().rows[1].block_hours;
        calibrate->setChecked(true);
        // 2 GFLOP/s measured against 989 TFLOP/s x 0.35 assumed: the block time grows by their ratio.
        QVERIFY(std::fabs(v.plan().rows[1].block_hours / assumed - 989e12 * 0.35 / 2e9) < 1e-6 * 989e12 * 0.35 / 2e9);
        QVERIFY(v.recommendation().contains("measured"));
        QVERIFY(v.recommendation().contains("GPU-hours"));
    }

    void everyPlotExportsPngAndSvg() {
        widgets::PlannerView v;
        v.resize(1000, 700);
        v.show();
        QTemporaryDir d;
        QString error;
        QVERIFY2(widgets::export_plot(v.disk_plot(), d.filePath("disk.png"), &error), qPrintable(error));
        QVERIFY2(widgets::export_plot(v.disk_plot(), d.filePath("disk.svg"), &error), qPrintable(error));
        QVERIFY(QFileInfo(d.filePath("disk.png")).size() > 1000);
        QFile svg(d.filePath("disk.svg"));
        QVERIFY(svg.open(QIODevice::ReadOnly));
        QVERIFY(svg.readAll().contains("<svg"));
        QVERIFY(!widgets::export_plot(v.disk_plot(), d.filePath("disk.bmpx"), &error));
        QVERIFY(error.contains("unknown format"));
    }

    void attentionMapsForLayer0Head0() {
        studio::AttentionView v;
        v.resize(1300, 500);
        v.show();
        v.set_source(QString::fromStdString(cache_dir() + "/models/stories15M"), "", 0);  // fresh feature maps
        QSignalSpy spy(&v, &studio::AttentionView::loaded);
        v.load("Once upon a time, there was a little girl named Lily.", 0, 0);
        QVERIFY(spy.wait(120000));
        QVERIFY2(spy.at(0).at(0).toBool(), qPrintable(v.info()));
        const int n = v.teacher()->size();
        QVERIFY(n >= 10);
        QCOMPARE(v.student()->size(), n);
        for (int i = 0; i < n; ++i) {  // both are causal attention distributions
            double t = 0, st = 0;
            for (int j = 0; j < n; ++j) t += v.teacher()->value(i, j), st += v.student()->value(i, j);
            QVERIFY(std::fabs(t - 1) < 1e-4 && std::fabs(st - 1) < 1e-4);
            if (i + 1 < n) QCOMPARE(v.teacher()->value(i, i + 1), 0.0);
        }
        QCOMPARE(v.difference()->value(5, 2), v.student()->value(5, 2) - v.teacher()->value(5, 2));
        QVERIFY2(v.info().contains("gamma 0.100") && v.info().contains("tk window 64"), qPrintable(v.info()));
        QVERIFY(v.teacher()->describe(2, 5).startsWith("query 5"));
    }

    void generationSideBySide() {
        studio::GenerateView v;
        v.set_source(QString::fromStdString(cache_dir() + "/models/stories15M"), "", 0);
        QSignalSpy spy(&v, &studio::GenerateView::done);
        v.generate("Once upon a time", 16);
        QVERIFY(spy.wait(120000));
        QVERIFY2(v.teacher_text().startsWith("Once upon a time, there was a little girl named Lily"),
                 qPrintable(v.teacher_text()));
        QVERIFY2(v.teacher_stats().contains("softmax: 16 tokens"), qPrintable(v.teacher_stats()));
    }

    void modelSummaryNamesTheFamilyOrWhyNot() {
        // A tiny Qwen 3 in the real layout (ctest fixture tiny_models): family, layout, tokenizer.
        studio::MainWindow w;
        QVERIFY(w.open_model(QString(LINCAT_BINARY_DIR) + "/tiny-models/qwen3"));
        auto* label = w.findChild<QLabel*>("modelSummary");
        QVERIFY(label);
        for (const char* want : {"Qwen 3", "4 heads / 2 kv heads x 64", "q/k norm", "byte-level BPE", "vocab 151936"})
            QVERIFY2(label->text().contains(want), qPrintable(label->text() + " lacks " + want));
        // A folder whose config names an unsupported architecture says so in the window.
        QTemporaryDir d;
        QFile f(d.filePath("config.json"));
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(R"({"model_type": "mixtral", "vocab_size": 10})");
        f.close();
        QVERIFY(!w.open_model(d.path()));
        QVERIFY2(label->text().contains("Cannot open model") && label->text().contains("config.json") &&
                     label->text().contains("mixtral"),
                 qPrintable(label->text()));
    }

    void stageOneFromTheGuiFillsCancelsAndResumes() {
        QTemporaryDir d;
        studio::MainWindow w;
        QVERIFY(w.open_model(QString::fromStdString(cache_dir() + "/models/stories15M")));
        QVERIFY(w.open_workspace(d.filePath("ws")));
        w.show();
        studio::SessionView* s = w.session();
        s->stage1_steps()->setValue(40);
        // The gate is a stage-1 option like any other: chosen here, recorded in the run's config.
        auto* gate = s->findChild<QComboBox*>("option_gate");
        QVERIFY(gate);
        QCOMPARE(gate->count(), 3);
        gate->setCurrentText("gla");  // not the default (decay)
        const QStringList small = {"--seq-len",    "64", "--teacher-sequences", "24", "--batch-size", "2",
                                   "--eval-every", "2",  "--checkpoint-every",  "2",  "--window",     "16"};
        QVERIFY(s->start_stage1(small));
        // The heat map fills as the job records steps.
        QTRY_VERIFY_WITH_TIMEOUT(w.layer_error()->heat_map()->columns() >= 4, 120000);
        s->cancel_job();
        QTRY_VERIFY_WITH_TIMEOUT(!s->job()->running(), 60000);
        Workspace* ws = s->workspace();
        QCOMPARE(ws->runs().size(), size_t(1));
        const int64_t run = ws->runs()[0].id;
        QCOMPARE(ws->run(run).status, RunStatus::Cancelled);
        QCOMPARE(json::parse(ws->run(run).config_json).value("gate", std::string()), std::string("gla"));
        const size_t done = ws->steps(run, "train").size();
        QVERIFY(done >= 4 && done < 40);
        // Resume from the run tree.
        s->refresh();
        QVERIFY(s->run_item(run));
        QCOMPARE(s->run_tree()->topLevelItem(0)->text(0), QString("session default"));  // sessions > runs > checkpoints
        QVERIFY(s->run_item(run)->childCount() >= 1);
        s->run_tree()->setCurrentItem(s->run_item(run));
        QCOMPARE(s->selected_run(), qint64(run));
        QVERIFY(s->resume_selected());
        QTRY_VERIFY_WITH_TIMEOUT(!s->job()->running(), 180000);
        QCOMPARE(ws->run(run).status, RunStatus::Completed);
        auto steps = ws->steps(run, "train");
        QCOMPARE(steps.size(), size_t(40));  // each step recorded once across cancel + resume
        s->refresh();
        w.layer_error()->refresh();
        QCOMPARE(w.layer_error()->heat_map()->columns(), 40);
        // The trained run as the student of the attention and generation views (and screenshots),
        // on a prompt sampled from the run's data.
        QVERIFY(w.attention()->sample_prompt(0));
        QVERIFY2(w.attention()->prompt().size() > 40, qPrintable(w.attention()->prompt()));
        QSignalSpy maps(w.attention(), &studio::AttentionView::loaded);
        w.attention()->load(w.attention()->prompt(), 0, 0);
        QVERIFY(maps.wait(120000));
        QVERIFY(maps.at(0).at(0).toBool());
        QVERIFY2(w.attention()->info().contains("tk window 16"), qPrintable(w.attention()->info()));
        QSignalSpy gen(w.generation(), &studio::GenerateView::done);
        w.generation()->generate("Once upon a time", 40);
        QVERIFY(gen.wait(120000));
        QVERIFY2(w.generation()->student_stats().startsWith("linearized"), qPrintable(w.generation()->student_stats()));
        QVERIFY(w.save_screenshots(qEnvironmentVariable("LINCAT_SCREENSHOTS", d.filePath("shots"))));
    }

    // Where a trained run loses: its error by position rises past the window edge, the run tree
    // shows its evaluation, a head bar and a heat-map cell open that layer's attention maps on a
    // data sample longer than the window, and decode speed is charted against context.
    void whereItLosesAfterStageOne() {
        QTemporaryDir d;
        const QString model = QString::fromStdString(cache_dir() + "/models/stories15M"), wsdir = d.filePath("ws");
        auto lincat = [&](const QStringList& args) {
            QProcess p;
            p.setProcessChannelMode(QProcess::MergedChannels);
            p.start(studio::JobRunner::lincat_binary(), QStringList(args)
                                                            << "--workspace" << wsdir << "--model" << model);
            const bool ended = p.waitForFinished(300000);
            const bool ok = ended && p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
            return ok ? QString() : args.join(' ') + ": " + p.errorString() + "\n" + QString::fromUtf8(p.readAll());
        };
        QString err = lincat({"distill", "--steps", "12", "--seq-len", "64", "--teacher-sequences", "24",
                              "--batch-size", "2", "--eval-every", "6", "--checkpoint-every", "6", "--window", "16",
                              "--softmax-share", "0"});  // run 1: every layer linear, so layer 3 below is one
        QVERIFY2(err.isEmpty(), qPrintable(err));
        err = lincat({"eval", "--run", "1"});  // run 2
        QVERIFY2(err.isEmpty(), qPrintable(err));

        studio::MainWindow w;
        QVERIFY(w.open_model(model));
        QVERIFY(w.open_workspace(wsdir));
        w.resize(1400, 900);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        studio::SessionView* s = w.session();
        s->refresh();
        // The run tree: the evaluation's figures on the stage-1 run and on the eval run.
        json doc = json::parse(*s->workspace()->run_results(2));
        const QString gap = QString::asprintf(
            "%+.2f%%", 100 * (doc["student_ppl"].get<double>() / doc["teacher_ppl"].get<double>() - 1));
        for (qint64 run : {1, 2}) {
            QVERIFY(s->run_item(run));
            QCOMPARE(s->run_item(run)->text(studio::SessionView::ColPpl), gap);
            QCOMPARE(s->run_item(run)->text(studio::SessionView::ColTop1),
                     QString::asprintf("%.2f%%", 100 * doc["top1_agreement"].get<double>()));
        }
        s->run_tree()->setCurrentItem(s->run_item(1));

        // Error by position: tk window 16 with start-aligned blocks: the linear part from 32.
        studio::PositionView* pv = w.position();
        QSignalSpy computed(pv, &studio::PositionView::loaded);
        w.tabs()->setCurrentWidget(pv);  // showing the tab computes for the selected run
        QVERIFY(computed.wait(180000));
        QVERIFY2(computed.at(0).at(0).toBool(), qPrintable(pv->info()));
        widgets::PositionErrorPlot* curve = pv->curve();
        QCOMPARE(curve->values().size(), 64);
        QCOMPARE(curve->window_edge(), 32);
        QVERIFY2(curve->mean_beyond() > 10 * curve->mean_inside(),
                 qPrintable(QString("inside %1, beyond %2").arg(curve->mean_inside()).arg(curve->mean_beyond())));
        QVERIFY(pv->info().contains("takes over at position 32"));
        QCOMPARE(pv->layer_choice()->count(), 7);  // all + 6 layers
        pv->layer_choice()->setCurrentIndex(4);    // layer 3
        QCOMPARE(pv->head_layer(), 3);
        QCOMPARE(pv->heads()->series().front().size(), 6);  // stories15M: 6 heads
        const auto& heads = pv->heads()->series().front();
        QCOMPARE(heads[pv->worst_head()], *std::max_element(heads.begin(), heads.end()));
        // The second computation of the same run is the cached file.
        QVERIFY(QDir(wsdir + "/analysis").entryList({"position-error-run-1-*.json"}).size() == 1);

        // Clicking head 2's bar opens its maps on a data sample (64 tokens: past the window).
        QCustomPlot* bars = pv->heads()->plot();
        QTest::qWait(100);  // laid out
        bars->replot();
        QSignalSpy maps(w.attention(), &studio::AttentionView::loaded);
        QTest::mouseClick(bars, Qt::LeftButton, {},
                          QPoint(bars->xAxis->coordToPixel(2), bars->yAxis->axisRect()->center().y()));
        QCOMPARE(w.tabs()->currentWidget(), static_cast<QWidget*>(w.attention()));
        QCOMPARE(w.attention()->layer(), 3);
        QCOMPARE(w.attention()->head(), 2);
        QVERIFY(maps.wait(120000));
        QVERIFY2(maps.at(0).at(0).toBool(), qPrintable(w.attention()->info()));
        QVERIFY2(w.attention()->teacher()->size() > 48, qPrintable(QString::number(w.attention()->teacher()->size())));

        // A heat-map cell opens its layer in the attention view.
        w.tabs()->setCurrentWidget(w.layer_error());
        w.layer_error()->show_run(1);
        QCustomPlot* heat = w.layer_error()->heat_map()->plot();
        QTest::qWait(100);
        heat->replot();
        QTest::mouseClick(heat, Qt::LeftButton, {}, QPoint(heat->xAxis->coordToPixel(6), heat->yAxis->coordToPixel(4)));
        QCOMPARE(w.tabs()->currentWidget(), static_cast<QWidget*>(w.attention()));
        QCOMPARE(w.attention()->layer(), 4);
        QVERIFY(maps.wait(120000));

        // Generation marks where the texts part; decode speed and state against context.
        QSignalSpy gen(w.generation(), &studio::GenerateView::done);
        w.generation()->generate("Once upon a time", 32);
        QVERIFY(gen.wait(120000));
        const int part = w.generation()->divergence();
        QVERIFY(part == -1 || part >= int(QString("Once upon a time").size()));
        if (part >= 0) QVERIFY(w.generation()->student_stats().contains("parts from the teacher"));
        QSignalSpy bench(w.generation(), &studio::GenerateView::decode_measured);
        w.generation()->measure_decode("64,256");
        QVERIFY(bench.wait(180000));
        QVERIFY(bench.at(0).at(0).toBool());
        const auto& memory = w.generation()->memory_plot()->series();  // MB: teacher, linearized
        QCOMPARE(memory.size(), 2);
        QVERIFY(memory[0][1] > memory[0][0] * 2);  // the KV cache grows with the context
        QCOMPARE(memory[1][1], memory[1][0]);      // the linear state does not
    }

    // The main job's runs (stage 1, its eval, stage 2, its eval) as recorded: the tree shows the
    // evaluations' figures; the stage-2 run's layer view shows its evaluation, not an empty map;
    // two runs selected together show their per-layer bars side by side and their ppl difference.
    void runTreeAndComparisonShowEvaluations() {
        QTemporaryDir d;
        const QString wsdir = d.filePath("ws");
        {
            Workspace ws = Workspace::open(wsdir.toStdString());
            const int64_t s1 = ws.create_run("default", RunKind::Distill, R"({"layers": []})", std::string(64, 'a'));
            for (int64_t st = 0; st < 4; ++st) ws.record_step(s1, "train", {st, 100 * st, 0.1, 1e-3, {1e-3, 2e-3}});
            ws.record_step(s1, "eval", {4, 400, 0.1, 0, {1e-3, 2e-3}});
            ws.set_run_status(s1, RunStatus::Completed);
            auto eval_of = [&](int64_t source, double ppl, std::vector<double> mse) {
                const int64_t e =
                    ws.create_run("default", RunKind::Eval, json({{"source_run", source}, {"checkpoint", "x"}}).dump(),
                                  std::string(64, 'a'));
                ws.set_run_results(e, json({{"run", e},
                                            {"teacher_ppl", 3.0},
                                            {"student_ppl", ppl},
                                            {"top1_agreement", 0.9721},
                                            {"kl", 0.02},
                                            {"layers", {0, 1}},
                                            {"layer_mse", mse}})
                                          .dump());
                ws.set_run_status(e, RunStatus::Completed);
            };
            eval_of(s1, 3.06, {1e-3, 3e-3});  // run 2: +2.00%
            const int64_t s2 =
                ws.create_run("default", RunKind::Finetune, R"({"stage1_run": 1})", std::string(64, 'a'));
            for (int64_t st = 0; st < 3; ++st) ws.record_step(s2, "train", {st, 100 * st, 1.0, 1e-4, {}});
            ws.set_run_status(s2, RunStatus::Completed);
            eval_of(s2, 3.03, {5e-4, 1e-3});  // run 4: +1.00%
        }
        studio::MainWindow w;
        QVERIFY(w.open_workspace(wsdir));
        studio::SessionView* s = w.session();
        s->refresh();
        QCOMPARE(s->run_item(1)->text(studio::SessionView::ColPpl), QString("+2.00%"));
        QCOMPARE(s->run_item(3)->text(studio::SessionView::ColPpl), QString("+1.00%"));
        QCOMPARE(s->run_item(3)->text(studio::SessionView::ColTop1), QString("97.21%"));
        QCOMPARE(s->run_item(3)->text(studio::SessionView::ColKl), QString("0.0200"));
        QCOMPARE(s->run_item(3)->text(studio::SessionView::ColMse), QString("0.00075"));
        // Stage 2 records no per-layer figures while training: its evaluation instead.
        w.layer_error()->show_run(3);
        QVERIFY(!w.layer_error()->map_shown());
        QCOMPARE(w.layer_error()->bars()->series().size(), 1);
        QCOMPARE(w.layer_error()->bars()->series()[0][1], 1e-3);
        QVERIFY2(w.layer_error()->findChild<QLabel*>("layerErrorNoMap")->text().contains("eval run 4"),
                 qPrintable(w.layer_error()->findChild<QLabel*>("layerErrorNoMap")->text()));
        // Two runs selected: bars side by side, the ppl difference in points.
        s->run_tree()->setCurrentItem(s->run_item(3));
        s->run_item(1)->setSelected(true);
        QCOMPARE(w.layer_error()->bars()->series().size(), 2);
        QCOMPARE(w.layer_error()->bars()->series()[1][1], 3e-3);
        QVERIFY2(w.layer_error()->summary().contains("difference -1.00 points"),
                 qPrintable(w.layer_error()->summary()));
        QVERIFY(w.layer_error()->map_shown() == false);
        // Keep-softmax suggestion from the selected run's evaluation: the worst layer, its decode cost.
        s->run_tree()->setCurrentItem(s->run_item(1));
        QVERIFY2(s->keep_softmax_hint().contains("loses most in layer 1 (0.003), layer 0 (0.001)"),
                 qPrintable(s->keep_softmax_hint()));
        QVERIFY2(s->keep_softmax_hint().contains("576 values of KV cache per token"),  // stories15M: 2 x 6 x 48
                 qPrintable(s->keep_softmax_hint()));
        QWidget* share = s->findChild<QWidget*>("option_softmax_share");
        QVERIFY(share && share->isEnabled());
        s->keep_worst_button()->click();
        QCOMPARE(s->keep_softmax()->text(), QString("1"));
        // Named softmax layers stay as named: the share is turned off and not passed.
        QVERIFY(!share->isEnabled());
        s->keep_softmax()->clear();
        QVERIFY(share->isEnabled());
    }

    // The ablation table in the studio: every evaluated run with what `lincat ablate` recorded
    // beside its evaluation; runs that linearize different layers line up by layer number.
    void compareRunsShowsTheAblationTable() {
        QTemporaryDir d;
        {
            Workspace ws = Workspace::open(d.filePath("ws").toStdString());
            auto variant = [&](const char* name, std::vector<int> layers, std::vector<double> mse, int64_t growth,
                               const char* config) {
                const int64_t s1 = ws.create_run("default", RunKind::Distill, config, std::string(64, 'a'));
                ws.set_run_status(s1, RunStatus::Completed);
                const int64_t e =
                    ws.create_run("default", RunKind::Eval, json({{"source_run", s1}, {"checkpoint", "x"}}).dump(),
                                  std::string(64, 'a'));
                ws.set_run_results(e, json({{"run", e},
                                            {"teacher_ppl", 3.131},
                                            {"student_ppl", 3.131 * 1.0196},
                                            {"top1_agreement", 0.9721},
                                            {"kl", 0.02},
                                            {"layers", layers},
                                            {"layer_mse", mse},
                                            {"ablation",
                                             {{"variant", name},
                                              {"stage", "stage 1"},
                                              {"trained_fraction", 0.01456},
                                              {"tokens_per_s", 3019.4},
                                              {"state_bytes", 5040000},
                                              {"state_bytes_per_token", growth},
                                              {"window_covers_sequence", false}}}})
                                          .dump());
                ws.set_run_status(e, RunStatus::Completed);
            };
            variant("lolcats", {0, 1, 2}, {1e-4, 5e-4, 1.3e-3}, 0, R"({"layers": []})");  // predates "gate"
            variant("keep_softmax=2 gate=decay", {0, 1}, {2e-4, 6e-4}, 2304, R"({"layers": [0, 1], "gate": "decay"})");
        }
        studio::MainWindow w;
        QVERIFY(w.open_workspace(d.filePath("ws")));
        studio::CompareView* c = w.compare();
        QTableWidget* t = c->table();
        QCOMPARE(t->rowCount(), 2);  // the two stage-1 runs (eval runs stand behind them)
        QCOMPARE(t->item(0, studio::CompareView::ColRun)->text(), QString("1"));
        QCOMPARE(t->item(0, studio::CompareView::ColVariant)->text(), QString("lolcats"));
        QCOMPARE(t->item(0, studio::CompareView::ColGate)->text(), QString("none"));
        QCOMPARE(t->item(1, studio::CompareView::ColGate)->text(), QString("decay"));
        QCOMPARE(t->item(0, studio::CompareView::ColPpl)->text(), QString("+1.96%"));
        QCOMPARE(t->item(0, studio::CompareView::ColWorst)->text(), QString("0.0013 (L2)"));
        QCOMPARE(t->item(0, studio::CompareView::ColTrained)->text(), QString("1.456%"));
        QCOMPARE(t->item(0, studio::CompareView::ColSpeed)->text(), QString("3019"));
        QCOMPARE(t->item(0, studio::CompareView::ColState)->text(), QString("5.04 MB"));
        QCOMPARE(t->item(1, studio::CompareView::ColGrowth)->text(), QString("2304 B"));
        // Bars of both, lined up by layer: layer 2 is softmax in the second run.
        QCOMPARE(c->bars()->series().size(), 2);
        QCOMPARE(c->bars()->series()[1].size(), 3);
        QCOMPARE(c->bars()->series()[1][1], 6e-4);
        QCOMPARE(c->bars()->series()[1][2], 0.0);
        t->selectRow(1);
        QCOMPARE(c->bars()->series().size(), 1);
        QCOMPARE(c->bars()->series()[0][0], 2e-4);
    }

    void closingTheStudioCancelsItsJobCleanly() {
        QTemporaryDir d;
        {
            studio::SessionView s;
            s.set_model(QString::fromStdString(cache_dir() + "/models/stories15M"));
            QVERIFY(s.open_workspace(d.filePath("ws")));
            s.stage1_steps()->setValue(400);
            QVERIFY(s.start_stage1({"--seq-len", "64", "--teacher-sequences", "24", "--batch-size", "2", "--eval-every",
                                    "2", "--checkpoint-every", "2", "--window", "16"}));
            QTRY_VERIFY_WITH_TIMEOUT(!s.workspace()->runs().empty() &&
                                         s.workspace()->steps(s.workspace()->runs()[0].id, "train").size() >= 2,
                                     120000);
        }  // the view (and its job runner) goes: SIGTERM, the job stops at its next step
        Workspace ws = Workspace::open(d.filePath("ws").toStdString());
        QCOMPARE(ws.runs()[0].status, RunStatus::Cancelled);
    }

    void killedJobLeavesTheGuiUpAndTheRunFailed() {
        QTemporaryDir d;
        studio::MainWindow w;
        QVERIFY(w.open_model(QString::fromStdString(cache_dir() + "/models/stories15M")));
        QVERIFY(w.open_workspace(d.filePath("ws")));
        studio::SessionView* s = w.session();
        s->stage1_steps()->setValue(400);
        QVERIFY(s->start_stage1({"--seq-len", "64", "--teacher-sequences", "24", "--batch-size", "2", "--eval-every",
                                 "2", "--checkpoint-every", "2", "--window", "16"}));
        Workspace* ws = s->workspace();
        QTRY_VERIFY_WITH_TIMEOUT(!ws->runs().empty() && ws->steps(ws->runs()[0].id, "train").size() >= 3, 120000);
        s->job()->kill();  // SIGKILL: no chance to record anything
        QTRY_VERIFY_WITH_TIMEOUT(!s->job()->running(), 30000);
        const int64_t run = ws->runs()[0].id;
        QTRY_COMPARE_WITH_TIMEOUT(ws->run(run).status, RunStatus::Failed, 10000);
        QVERIFY(QString::fromStdString(ws->run(run).message).contains("killed or crashed"));
        QVERIFY(ws->steps(run, "train").size() >= 3);  // its records are intact and readable
        w.layer_error()->show_run(run);
        QVERIFY(w.layer_error()->heat_map()->columns() >= 3);
    }

    // Resume of the run tree works for every kind that resumes: a stage-1, stage-2, block and
    // dump run left unfinished (a NaN loss at step 3 via LINCAT_FAULT_NAN_STEP; a dump whose
    // process died before its manifest) each completes from the studio, through `lincat resume`.
    void resumeFromTheStudioWorksForEveryKind() {
        QTemporaryDir d;
        const QString model = QString(LINCAT_BINARY_DIR) + "/tiny-models/llama3";
        const QString wsdir = d.filePath("ws"), states = d.filePath("ws/states/k1");
        auto lincat = [&](QStringList args, bool fault) {
            QProcess p;
            QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
            if (fault) env.insert("LINCAT_FAULT_NAN_STEP", "3");
            p.setProcessEnvironment(env);
            p.setProcessChannelMode(QProcess::MergedChannels);
            p.start(studio::JobRunner::lincat_binary(), args << "--workspace" << wsdir << "--model" << model);
            p.waitForFinished(300000);
            return QString::fromUtf8(p.readAll());
        };
        const QStringList train = {"--steps", "6", "--eval-every", "2", "--checkpoint-every", "2", "--batch-size", "2"};
        const QStringList data = {"--seq-len", "32", "--teacher-sequences", "8"};
        lincat(QStringList{"distill"} + train + data + QStringList{"--window", "8"}, true);  // run 1
        studio::SessionView s;
        s.set_model(model);
        QVERIFY(s.open_workspace(wsdir));
        Workspace* ws = s.workspace();
        auto resume = [&](int64_t run) {
            QCOMPARE(ws->run(run).status, RunStatus::Failed);
            s.refresh();
            QVERIFY(s.run_item(run));
            s.run_tree()->setCurrentItem(s.run_item(run));
            QVERIFY(s.resume_selected());
            QTRY_VERIFY_WITH_TIMEOUT(!s.job()->running(), 300000);
            QVERIFY2(ws->run(run).status == RunStatus::Completed, qPrintable(s.job()->output()));
            QCOMPARE(s.job()->result().value("run").toInteger(), qint64(run));  // the job's "result" event
        };
        resume(1);
        QCOMPARE(ws->steps(1, "train").size(), size_t(6));
        lincat(QStringList{"finetune", "--run", "1"} + train, true);  // run 2
        QCOMPARE(ws->run(2).kind, RunKind::Finetune);
        resume(2);
        QVERIFY(lincat({"dump-states", "--k", "1", "--seq-len", "32", "--teacher-sequences", "8"}, false)
                    .contains("completed"));  // run 3
        QCOMPARE(ws->run(3).kind, RunKind::DumpStates);
        lincat(QStringList{"distill", "--states", states, "--block", "0"} + train + QStringList{"--window", "8"},
               true);  // run 4
        QCOMPARE(ws->run(4).kind, RunKind::DistillBlock);
        resume(4);
        // A dump killed before its manifest: the run still says running in the database.
        QVERIFY(QFile::remove(states + "/manifest.json"));
        ws->set_run_status(3, RunStatus::Failed, "killed");
        resume(3);
        QVERIFY(QFile::exists(states + "/manifest.json"));
        // An evaluation is not resumed: it is run again.
        lincat({"eval", "--run", "1", "--max-rows", "1"}, false);  // run 5
        QCOMPARE(ws->run(5).kind, RunKind::Eval);
        ws->set_run_status(5, RunStatus::Failed);
        s.refresh();
        s.run_tree()->setCurrentItem(s.run_item(5));
        QVERIFY(!s.resume_selected());
    }
};

QTEST_MAIN(StudioTest)
#include "test_studio.moc"
