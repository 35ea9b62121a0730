# Sets NUDGE_GIT_COMMIT to the short hash of the checked-out commit, or to "" outside a git
# checkout (a source tarball). CMake re-runs when HEAD moves, so the hash a program prints is
# the one it was built from, not the one of the first configure.
set(NUDGE_GIT_COMMIT "")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(
    COMMAND ${GIT_EXECUTABLE} rev-parse --short=7 HEAD
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    OUTPUT_VARIABLE commit
    OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE commit_rc
    ERROR_QUIET)
  if(commit_rc EQUAL 0)
    set(NUDGE_GIT_COMMIT ${commit})
    # HEAD names the branch; the branch's ref file (or packed-refs) holds the commit.
    execute_process(
      COMMAND ${GIT_EXECUTABLE} rev-parse --git-path HEAD --git-path packed-refs
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
      OUTPUT_VARIABLE git_files
      OUTPUT_STRIP_TRAILING_WHITESPACE
      ERROR_QUIET)
    execute_process(
      COMMAND ${GIT_EXECUTABLE} symbolic-ref -q HEAD
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
      OUTPUT_VARIABLE branch_ref
      OUTPUT_STRIP_TRAILING_WHITESPACE
      ERROR_QUIET)
    if(branch_ref)
      execute_process(
        COMMAND ${GIT_EXECUTABLE} rev-parse --git-path ${branch_ref}
        WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
        OUTPUT_VARIABLE branch_file
        OUTPUT_STRIP_TRAILING_WHITESPACE
        ERROR_QUIET)
      string(APPEND git_files "\n${branch_file}")
    endif()
    string(REPLACE "\n" ";" git_files "${git_files}")
    foreach(f IN LISTS git_files)
      get_filename_component(f ${f} ABSOLUTE BASE_DIR ${CMAKE_SOURCE_DIR})
      if(EXISTS ${f})
        set_property(DIRECTORY ${CMAKE_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${f})
      endif()
    endforeach()
  endif()
endif()
