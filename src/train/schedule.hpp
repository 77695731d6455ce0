// Learning-rate schedules: the rate at each iteration (counted from 0). Schedules are values and
// compose by wrapping: linear_warmup(500, 0.1, multi_step_lr(0.1, {30000, 60000}, 0.1)) ramps up
// for 500 iterations and then follows the multi-step schedule, whose milestones count from
// iteration 0 (as in Goyal et al. 2017 and the paper's ResNet-50 setup: warm-up, then x0.1 at
// fixed epochs).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace dfp::train {

class LrSchedule {
  public:
    explicit LrSchedule(std::function<double(std::int64_t)> rate) : rate_(std::move(rate)) {}
    double operator()(std::int64_t iteration) const { return rate_(iteration); }

  private:
    std::function<double(std::int64_t)> rate_;
};

LrSchedule constant_lr(double lr);
// lr * gamma^floor(iteration / step)
LrSchedule step_lr(double lr, std::int64_t step, double gamma);
// lr * gamma^(number of milestones <= iteration); milestones strictly increasing
LrSchedule multi_step_lr(double lr, std::vector<std::int64_t> milestones, double gamma);
// final_lr + (lr - final_lr) (1 + cos(pi iteration / total)) / 2, then final_lr from total on
LrSchedule cosine_lr(double lr, std::int64_t total, double final_lr = 0.0);
// lr (1 - iteration / total)^power, then 0 from total on (Caffe's "poly"; GoogLeNet-v1 uses 0.5)
LrSchedule poly_lr(double lr, std::int64_t total, double power);
// Below `iterations`: then(iterations) * (start_factor + (1 - start_factor) iteration /
// iterations), a straight line up to where `then` continues; from `iterations` on: then.
LrSchedule linear_warmup(std::int64_t iterations, double start_factor, LrSchedule then);

}  // namespace dfp::train
