#include "dist/communicator.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>

#include "base/error.hpp"

namespace dfp::dist {
namespace {

// Between two polls of an unfinished request: short against a training step, long enough that a
// waiting rank leaves the cores to the ranks still computing (mpirun --oversubscribe).
constexpr auto kPollPause = std::chrono::microseconds(50);

bool launched_by_mpi() {
    return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr;
}

std::string seconds(double s) {
    char text[32];
    std::snprintf(text, sizeof text, "%g s", s);
    return text;
}

}  // namespace

std::unique_ptr<Communicator> Communicator::join_if_launched(double timeout_s) {
    if (!launched_by_mpi()) return nullptr;
    if (!(timeout_s > 0)) throw Error("--mpi-timeout must be > 0 seconds");
    return std::unique_ptr<Communicator>(new Communicator(timeout_s));
}

Communicator::Communicator(double timeout_s)
    : timeout_s_(timeout_s), uncaught_at_start_(std::uncaught_exceptions()) {
    // Only the training thread calls MPI (the batch prefetcher never does).
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        throw Error("MPI_Init failed: cannot join the ranks started by mpirun");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    channels_.push_back(MPI_COMM_WORLD);
    MPI_Comm local = MPI_COMM_NULL;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local),
          "MPI_Comm_split_type");
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
}

Communicator::Channel Communicator::open_channel() {
    MPI_Comm comm = MPI_COMM_NULL;
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    channels_.push_back(comm);
    return static_cast<Channel>(channels_.size() - 1);
}

Communicator::~Communicator() {
    if (std::uncaught_exceptions() > uncaught_at_start_) return;
    for (std::size_t i = 1; i < channels_.size(); ++i) MPI_Comm_free(&channels_[i]);
    MPI_Finalize();
}

void Communicator::check(int status, const std::string& what) const {
    if (status == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(status, text, &length);
    throw Error("rank " + std::to_string(rank_) + ": " + what +
                ": MPI error: " + std::string(text, static_cast<std::size_t>(length)));
}

Communicator::Request Communicator::allreduce(Channel channel, void* data, int count,
                                              MPI_Datatype type, MPI_Op op, std::string what) {
    Request r{MPI_REQUEST_NULL, std::move(what)};
    check(MPI_Iallreduce(MPI_IN_PLACE, data, count, type, op, comm(channel), &r.request), r.what);
    return r;
}

Communicator::Request Communicator::alltoall(Channel channel, const void* send, void* recv,
                                             int count, MPI_Datatype type, std::string what) {
    Request r{MPI_REQUEST_NULL, std::move(what)};
    check(MPI_Ialltoall(send, count, type, recv, count, type, comm(channel), &r.request), r.what);
    return r;
}

Communicator::Request Communicator::allgather_in_place(Channel channel, void* data, int count,
                                                       MPI_Datatype type, std::string what) {
    Request r{MPI_REQUEST_NULL, std::move(what)};
    check(MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, count, type, comm(channel),
                         &r.request),
          r.what);
    return r;
}

bool Communicator::test(Request& request) {
    int done = 0;
    check(MPI_Test(&request.request, &done, MPI_STATUS_IGNORE), request.what);
    return done != 0;
}

void Communicator::wait(Request& request) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
    while (!test(request)) {
        if (std::chrono::steady_clock::now() > deadline)
            throw Error("rank " + std::to_string(rank_) + ": " + request.what +
                        ": no answer from the other ranks within " + seconds(timeout_s_) +
                        " (--mpi-timeout): a rank died or hangs");
        std::this_thread::sleep_for(kPollPause);
    }
}

void Communicator::allreduce_wait(Channel channel, void* data, int count, MPI_Datatype type,
                                  MPI_Op op, std::string what) {
    Request r = allreduce(channel, data, count, type, op, std::move(what));
    wait(r);
}

}  // namespace dfp::dist
