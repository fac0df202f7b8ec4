//! A call that has been sent: [`Call`], the future every async operation returns, and
//! its blocking counterpart (`Call::wait`, used by the blocking API).
//!
//! Owns: waiting for a sent call's one answer and turning it into the method's result.
//! Must never send anything: the request left (was queued for the driver, in call
//! order) when the method was called, before this value existed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pyxis_core::Error;

use crate::handle::ops::Finish;
use crate::handle::Pending;

/// An operation on its way to the server: await it for the result.
///
/// **Requests are sent in call order, not in await order.** The request was handed to
/// the client's connection when the method returned this value, so
/// `let w = client.write(..); let r = client.read(..);` sends the write first however
/// the two are awaited (with `join!`, in reverse, or from other tasks), and the read
/// sees the write. Dropping a `Call` does not cancel the request; its answer is
/// discarded.
#[must_use = "the request is sent already; await the call to learn its outcome"]
pub struct Call<T> {
    pending: Option<Pending>,
    finish: Finish<T>,
}

impl<T> Call<T> {
    pub(crate) fn new(pending: Pending, finish: Finish<T>) -> Call<T> {
        Call {
            pending: Some(pending),
            finish,
        }
    }

    /// Waits for the result on this thread (what the blocking API does).
    pub(crate) fn wait(mut self) -> Result<T, Error> {
        let Some(mut pending) = self.pending.take() else {
            return Err(Error::Closed);
        };
        let answer = pending.reply.wait();
        pending
            .finish(answer)
            .and_then(|(reply, watch)| (self.finish)(reply, watch))
    }
}

impl<T> Future for Call<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(pending) = &mut this.pending else {
            // Polled again after completing: there is no second answer.
            return Poll::Ready(Err(Error::Closed));
        };
        let answer = ready!(pending.reply.poll(cx));
        let result = match this.pending.take() {
            Some(pending) => pending.finish(answer),
            None => Err(Error::Closed),
        };
        Poll::Ready(result.and_then(|(reply, watch)| (this.finish)(reply, watch)))
    }
}

impl<T> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("answered", &self.pending.is_none())
            .finish()
    }
}
