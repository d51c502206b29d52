#include "train/schedule.h"

namespace lincat {

const FieldTable<TrainSchedule>& schedule_fields() {
    using S = TrainSchedule;
    static const FieldTable<S> t = {
        field<S>(
            "steps", "optimizer steps", [](S & s) -> auto& { return s.steps; })
            .at_least(1),
        field<S>(
            "batch_size", "sequences per micro-batch", [](S & s) -> auto& { return s.batch_size; })
            .at_least(1),
        field<S>(
            "grad_accum", "micro-batches per step", [](S & s) -> auto& { return s.grad_accum; })
            .at_least(1),
        field<S>(
            "lr", "AdamW learning rate", [](S & s) -> auto& { return s.lr; })
            .above(0),
        field<S>(
            "weight_decay", "AdamW weight decay", [](S & s) -> auto& { return s.weight_decay; })
            .at_least(0),
        field<S>(
            "clip", "max gradient norm (0: none)", [](S & s) -> auto& { return s.clip; })
            .at_least(0),
        field<S>(
            "eval_every", "steps between evaluations", [](S & s) -> auto& { return s.eval_every; })
            .at_least(1),
        field<S>(
            "checkpoint_every", "steps between checkpoints", [](S & s) -> auto& { return s.checkpoint_every; })
            .at_least(1),
        field<S>(
            "plateau_factor", "lr factor on a plateau", [](S & s) -> auto& { return s.plateau_factor; })
            .above(0)
            .at_most(1),
        field<S>(
            "plateau_patience", "evaluations without improvement before the lr drops",
            [](S & s) -> auto& { return s.plateau_patience; })
            .at_least(0),
        field<S>(
            "seed", "seed for initialisation and data order", [](S & s) -> auto& { return s.seed; })
            .at_least(0),
    };
    return t;
}

}  // namespace lincat
