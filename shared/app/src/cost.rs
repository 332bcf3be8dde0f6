//! Monthly AWS cost model (`argus cost`). Owned by the deploy work (issue 6).
