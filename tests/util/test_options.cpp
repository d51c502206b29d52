// The options tables (util/options.h) against the structs they describe: every member of every
// options struct is reached by its table (a new member not in the table fails here), every
// field round-trips through the JSON record, and bad records are refused naming the field.
#include <gtest/gtest.h>

#include <tuple>

#include "attention/spec.h"
#include "data/data_spec.h"
#include "model/lora_options.h"
#include "store/run_types.h"
#include "test_util.h"
#include "train/distill_config.h"
#include "train/finetune_config.h"
#include "train/schedule.h"

using namespace lincat;
using lincat::test::expect_error;

namespace {

// How many members an aggregate has: the most initializers `T{...}` accepts.
struct AnyInit {
    template <class T>
    operator T() const;
};
template <class T, class... A>
constexpr size_t member_count() {
    if constexpr (requires { T{A{}..., AnyInit{}}; })
        return member_count<T, A..., AnyInit>();
    else
        return sizeof...(A);
}

// The members of an aggregate as a tuple of references (structured bindings, by count).
template <class T>
auto members(T& t) {
    constexpr size_t n = member_count<T>();
    static_assert(n <= 12, "extend members() for larger structs");
    if constexpr (n == 1) {
        auto& [a] = t;
        return std::tie(a);
    } else if constexpr (n == 2) {
        auto& [a, b] = t;
        return std::tie(a, b);
    } else if constexpr (n == 3) {
        auto& [a, b, c] = t;
        return std::tie(a, b, c);
    } else if constexpr (n == 4) {
        auto& [a, b, c, d] = t;
        return std::tie(a, b, c, d);
    } else if constexpr (n == 5) {
        auto& [a, b, c, d, e] = t;
        return std::tie(a, b, c, d, e);
    } else if constexpr (n == 6) {
        auto& [a, b, c, d, e, f] = t;
        return std::tie(a, b, c, d, e, f);
    } else if constexpr (n == 7) {
        auto& [a, b, c, d, e, f, g] = t;
        return std::tie(a, b, c, d, e, f, g);
    } else if constexpr (n == 8) {
        auto& [a, b, c, d, e, f, g, h] = t;
        return std::tie(a, b, c, d, e, f, g, h);
    } else if constexpr (n == 9) {
        auto& [a, b, c, d, e, f, g, h, i] = t;
        return std::tie(a, b, c, d, e, f, g, h, i);
    } else if constexpr (n == 10) {
        auto& [a, b, c, d, e, f, g, h, i, j] = t;
        return std::tie(a, b, c, d, e, f, g, h, i, j);
    } else if constexpr (n == 11) {
        auto& [a, b, c, d, e, f, g, h, i, j, k] = t;
        return std::tie(a, b, c, d, e, f, g, h, i, j, k);
    } else {
        auto& [a, b, c, d, e, f, g, h, i, j, k, l] = t;
        return std::tie(a, b, c, d, e, f, g, h, i, j, k, l);
    }
}

template <class T>
constexpr bool is_options_struct =
    std::is_same_v<T, LinearizeOptions> || std::is_same_v<T, WindowSpec> || std::is_same_v<T, DataSpec> ||
    std::is_same_v<T, TrainSchedule> || std::is_same_v<T, LoraOptions> || std::is_same_v<T, DistillConfig> ||
    std::is_same_v<T, FinetuneConfig>;

// Every leaf member of `changed` differs from `base` (nested options structs are walked);
// failures name the member's index path.
template <class T>
void expect_every_member_changed(const T& base, const T& changed, const std::string& path) {
    if constexpr (is_options_struct<T>) {
        auto a = members(const_cast<T&>(base));
        auto b = members(const_cast<T&>(changed));
        [&]<size_t... I>(std::index_sequence<I...>) {
            (expect_every_member_changed(std::get<I>(a), std::get<I>(b), path + "." + std::to_string(I)), ...);
        }
        (std::make_index_sequence<std::tuple_size_v<decltype(a)>>{});
    } else {
        EXPECT_FALSE(base == changed) << "member " << path << " is not reached by any field of the table";
    }
}

// A valid value other than `v` for a field (by its type, limits and choices).
json other_value(const json& v, FieldType type, double lo, double hi, const std::vector<std::string>& choices) {
    switch (type) {
        case FieldType::Int:
            return v.get<int64_t>() + 1 <= hi ? json(v.get<int64_t>() + 1) : json(v.get<int64_t>() - 1);
        case FieldType::Double: {
            double x = v.get<double>(), y = x == 0 ? 0.5 : x * 0.5;
            if (y <= lo) y = (x + std::min(hi, x + 1)) / 2;
            return y;
        }
        case FieldType::Bool:
            return !v.get<bool>();
        case FieldType::Text:
            for (auto& c : choices)
                if (c != v.get<std::string>()) return c;
            return v.get<std::string>() + "x";
        case FieldType::IntList: {
            json l = v;
            l.push_back(int64_t(std::max(lo, 0.0)) + 1);
            return l;
        }
        case FieldType::TextList: {
            json l = json::array();
            if (!choices.empty()) {
                for (auto& c : choices)
                    if (std::find(v.begin(), v.end(), json(c)) == v.end()) return json::array({c});
                l.push_back(choices.front());
            } else {
                l = v;
                l.push_back("data.txt");
            }
            return l;
        }
    }
    return v;
}

template <class C>
C perturbed(const FieldTable<C>& t, const C& from, const Field<C>& f) {
    C c = from;
    f.set(c, other_value(f.get(from), f.type, f.lo, f.hi, f.choices));
    return c;
}

template <class C>
void check_table(const FieldTable<C>& t, const std::string& what) {
    SCOPED_TRACE(what);
    const C defaults{};
    C all = defaults;
    for (auto& f : t) {
        SCOPED_TRACE(f.key);
        C one = perturbed(t, defaults, f);
        EXPECT_FALSE(one == defaults) << "field '" << f.key << "' changes nothing";
        table_validate(t, one, what);
        C back{};
        table_from_json(t, table_to_json(t, one), back, what);
        EXPECT_TRUE(back == one) << "field '" << f.key << "' does not survive the JSON record";
        all = perturbed(t, all, f);
    }
    expect_every_member_changed(defaults, all, what);
    // Keys are unique (a flat record cannot hold two fields under one name).
    std::set<std::string> keys;
    for (auto& f : t) EXPECT_TRUE(keys.insert(f.key).second) << "key '" << f.key << "' twice";
}

}  // namespace

TEST(Options, EveryStructsTableCoversEveryMemberAndRoundTrips) {
    check_table(linearize_fields(), "linearize");
    check_table(data_fields(), "data");
    check_table(schedule_fields(), "schedule");
    check_table(lora_fields(), "lora");
    check_table(distill_fields(), "distill");
    check_table(finetune_fields(), "finetune");
}

TEST(Options, RecordsAreTheTablesJson) {
    DistillConfig d;
    d.linearize.window.align = BlockAlign::End;
    d.linearize.decode_window = WindowKind::Sliding;
    d.schedule.steps = 7;
    EXPECT_EQ(DistillConfig::from_json(d.to_json(), "run"), d);  // align and decode_window survive a resume
    json j = json::parse(d.to_json());
    EXPECT_EQ(j["block_align"], "end");
    EXPECT_EQ(j["decode_window"], "sw");
    EXPECT_EQ(j["steps"], 7);
    FinetuneConfig f;
    f.lora.targets = {"q_proj", "down_proj"};
    f.schedule.seed = 5;
    EXPECT_EQ(FinetuneConfig::from_json(f.to_json(), "run"), f);
    EXPECT_EQ(json::parse(f.to_json())["lora_targets"], json({"q_proj", "down_proj"}));
    // linearization.json carries the same option fields (and the layers made explicit).
    std::string hash;
    LinearizeOptions o = linearization_from_json(linearization_to_json(d.linearize, 3, "h"), "lin.json", &hash);
    EXPECT_EQ(o.window, d.linearize.window);
    EXPECT_EQ(o.decode_window, WindowKind::Sliding);
    EXPECT_EQ(o.layers, (std::vector<int64_t>{0, 1, 2}));
    EXPECT_EQ(hash, "h");
}

TEST(Options, OlderRecordsReadTheirDefaults) {
    // A stage-1 record from before block_align, decode_window, identity_init, xent_factor,
    // data_seed, gate, teacher_cache_mb and softmax_share were kept: those read as the defaults, data_seed as
    // the run's seed.
    json j = json::parse(DistillConfig{}.to_json());
    for (const char* k : {"block_align", "decode_window", "identity_init", "xent_factor", "data_seed", "gate",
                          "teacher_cache_mb", "softmax_share", "sample_dtype"})
        j.erase(k);
    j["seed"] = 9;
    DistillConfig c = DistillConfig::from_json(j.dump(), "old run");
    EXPECT_EQ(c.schedule.seed, 9u);
    EXPECT_EQ(c.data.seed, 9u);
    EXPECT_EQ(c.linearize.window.align, BlockAlign::Start);
    EXPECT_EQ(c.linearize.gate, GateKind::None);  // what those runs did, not today's decay
    EXPECT_EQ(c.softmax_share, 0.0);
    EXPECT_EQ(c.teacher_cache_mb, DistillConfig{}.teacher_cache_mb);
    EXPECT_EQ(c.data.sample_dtype, "model");  // those runs sampled the teacher as loaded
    json d = json::parse(data_spec_to_json(DataSpec{}));
    d.erase("sample_dtype");
    EXPECT_EQ(data_spec_from_json(d.dump(), "old manifest").sample_dtype, "model");
    // Today's records keep their gate and share.
    DistillConfig now = DistillConfig::from_json(DistillConfig{}.to_json(), "new run");
    EXPECT_EQ(now.linearize.gate, GateKind::Decay);
    EXPECT_EQ(now.softmax_share, 0.125);
    EXPECT_EQ(now.data.sample_dtype, "auto");
}

TEST(Options, BadRecordsNameTheField) {
    json j = json::parse(DistillConfig{}.to_json());
    j.erase("window");
    expect_error([&] { DistillConfig::from_json(j.dump(), "run 3 config"); }, {"run 3 config", "'window'", "missing"});
    j = json::parse(DistillConfig{}.to_json());
    j["window"] = "big";
    expect_error([&] { DistillConfig::from_json(j.dump(), "run 3 config"); }, {"'window'", "integer", "string"});
    j["window"] = 0;
    expect_error([&] { DistillConfig::from_json(j.dump(), "run 3 config"); }, {"'window'", "in [1, 65536]", "not 0"});
    j = json::parse(DistillConfig{}.to_json());
    j["variant"] = "zz";
    expect_error([&] { DistillConfig::from_json(j.dump(), "run 3 config"); }, {"'variant'", "zz"});
    j = json::parse(DistillConfig{}.to_json());
    j["lr"] = 0;
    expect_error([&] { DistillConfig::from_json(j.dump(), "cfg"); }, {"'lr'", "> 0"});
    j = json::parse(DistillConfig{}.to_json());
    j["sample_dtype"] = "fp8";
    expect_error([&] { DistillConfig::from_json(j.dump(), "cfg"); }, {"'sample_dtype'", "fp8"});
    json f = json::parse(FinetuneConfig{}.to_json());
    f["lora_targets"] = {"q_proj", "mlp"};
    expect_error([&] { FinetuneConfig::from_json(f.dump(), "cfg"); }, {"'lora_targets'", "mlp"});
    f = json::parse(FinetuneConfig{}.to_json());
    f["kd_factor"] = 0;
    expect_error([&] { FinetuneConfig::from_json(f.dump(), "cfg"); }, {"not both be 0"});
}

TEST(Options, DefaultsAreTheStructs) {
    EXPECT_EQ(default_text(field_of(distill_fields(), "steps")), "200");
    EXPECT_EQ(default_text(field_of(finetune_fields(), "steps")), "100");
    EXPECT_EQ(default_text(field_of(finetune_fields(), "lr")), "0.0003");
    EXPECT_EQ(default_text(field_of(distill_fields(), "variant")), "tk");
    EXPECT_EQ(default_text(field_of(finetune_fields(), "lora_targets")), "q_proj,k_proj,v_proj,o_proj");
    EXPECT_EQ(default_seq_len(128), 128);
    EXPECT_EQ(default_seq_len(8192), DataSpec{}.seq_len);
}

TEST(RunTypes, OneMappingBothWays) {
    for (RunStatus s :
         {RunStatus::Created, RunStatus::Running, RunStatus::Completed, RunStatus::Failed, RunStatus::Cancelled})
        EXPECT_EQ(parse_run_status(run_status_name(s)), s);
    for (RunKind k : {RunKind::Distill, RunKind::Finetune, RunKind::DistillBlock, RunKind::DumpStates, RunKind::Eval})
        EXPECT_EQ(parse_run_kind(run_kind_name(k)), k);
    // The database's text values, as every earlier lincat wrote them.
    EXPECT_EQ(parse_run_kind("distill-block"), RunKind::DistillBlock);
    EXPECT_EQ(parse_run_kind("dump-states"), RunKind::DumpStates);
    EXPECT_EQ(parse_run_status("cancelled"), RunStatus::Cancelled);
    EXPECT_FALSE(parse_run_kind("stitch"));
    EXPECT_FALSE(run_kind_resumes(RunKind::Eval));
    EXPECT_TRUE(run_kind_resumes(RunKind::DumpStates));
}
