// A thin wrapper of MPI's C API for data-parallel training: the processes started by mpirun, the
// few nonblocking collectives the trainer needs, and a deadline on every wait, so that a rank that
// died or hangs makes the others stop with a dfp::Error instead of waiting forever.
#pragma once

// The C API only: MPI's C++ bindings are deprecated (and were removed from MPI-3).
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dfp::dist {

class Communicator {
  public:
    // MPI_Init when this process was started by an MPI launcher (mpirun sets OMPI_COMM_WORLD_SIZE
    // or PMIX_RANK), else null: a plain process stays a plain process, without MPI. Errors are
    // returned, not fatal (MPI_ERRORS_RETURN), and every wait gives up after timeout_s.
    static std::unique_ptr<Communicator> join_if_launched(double timeout_s);
    // MPI_Finalize, except while an error unwinds: finalizing waits for the other ranks, which may
    // be the ones that failed; exiting without it makes mpirun end them.
    ~Communicator();
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    // Ranks on this machine (sharing its cores), this one included.
    int local_size() const { return local_size_; }

    // Collectives on one channel must start in the same order on every rank; those on different
    // channels need not (MPI_Comm_dup). The gradient exchange gives each tensor its own channel, so
    // that each advances as soon as its last step completes. Channel 0 is MPI_COMM_WORLD.
    using Channel = int;
    Channel open_channel();

    // A started collective; wait() completes it.
    struct Request {
        MPI_Request request = MPI_REQUEST_NULL;
        std::string what;  // for the timeout message, e.g. "gradient exchange of 'fc1.weight'"
    };
    // In place: data (count values of type) becomes the element-wise op over all ranks.
    Request allreduce(Channel channel, void* data, int count, MPI_Datatype type, MPI_Op op,
                      std::string what);
    // send holds size() blocks of count values; block r goes to rank r, whose recv block `rank()`
    // receives it.
    Request alltoall(Channel channel, const void* send, void* recv, int count, MPI_Datatype type,
                     std::string what);
    // data holds size() blocks of count values; block rank() is sent to every rank.
    Request allgather_in_place(Channel channel, void* data, int count, MPI_Datatype type,
                               std::string what);

    // True when the request has completed (then it is MPI_REQUEST_NULL); lets MPI progress.
    bool test(Request& request);
    // Polls until the request completes; throws dfp::Error naming request.what and the timeout when
    // it does not within timeout_s, or when MPI reports an error.
    void wait(Request& request);

    // allreduce(), then wait().
    void allreduce_wait(Channel channel, void* data, int count, MPI_Datatype type, MPI_Op op,
                        std::string what);

  private:
    explicit Communicator(double timeout_s);
    void check(int status, const std::string& what) const;

    MPI_Comm comm(Channel channel) const { return channels_.at(std::size_t(channel)); }

    std::vector<MPI_Comm> channels_;  // [0] is MPI_COMM_WORLD; the others are freed at the end
    int rank_ = 0, size_ = 1, local_size_ = 1;
    double timeout_s_;
    int uncaught_at_start_;
};

}  // namespace dfp::dist
